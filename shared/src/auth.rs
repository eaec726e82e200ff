//! Bearer authentication: an access JWT whose session is still active.

use lambda_http::Request;

use crate::clock::UnixTime;
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};
use crate::store::{decode, Item};
use crate::tokens::{self, AccessClaims};
use crate::{http, Error, State};

/// The authenticated caller.
#[derive(Debug)]
pub struct Principal {
    /// The verified token's claims.
    pub claims: AccessClaims,
    /// The caller's session, active.
    pub session: Session,
    /// The caller.
    pub user: User,
}

/// Verifies an access JWT offline against the cached keys (no DynamoDB call).
pub async fn verify_jwt(state: &State, token: &str, now: UnixTime) -> Result<AccessClaims, Error> {
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    let keys = state.keys.get_for_kid(kid.as_deref(), now).await?;
    tokens::verify_access_token(&keys, token, &state.config.issuer, &state.config.audience, now)
}

/// The bearer's verified claims, without checking the session.
pub async fn bearer_claims(state: &State, req: &Request, now: UnixTime) -> Result<AccessClaims, Error> {
    let token = http::bearer_token(req).ok_or(Error::InvalidToken("Authentication is required."))?;
    verify_jwt(state, token, now).await
}

/// Authenticates the bearer and checks its session and user in one strongly consistent BatchGetItem, so a
/// revoked session is refused even while its JWT has not expired. One round trip.
pub async fn authenticate(state: &State, req: &Request, now: UnixTime) -> Result<Principal, Error> {
    let claims = bearer_claims(state, req, now).await?;
    let items = state
        .store
        .batch_get(vec![sessions::session_key(&claims.sid), users::user_key(&claims.sub)])
        .await?;
    let (mut session, mut user) = (None, None);
    for item in items {
        match pk_of(&item) {
            Some(pk) if pk.starts_with("SESSION#") => session = Some(decode::<Session>(item)?),
            Some(pk) if pk.starts_with("USER#") => user = Some(decode::<User>(item)?),
            _ => {}
        }
    }
    let (Some(session), Some(user)) = (session, user) else {
        return Err(Error::SessionRevoked);
    };
    session.check_active(&user, now).map_err(|_| Error::SessionRevoked)?;
    Ok(Principal { claims, session, user })
}

fn pk_of(item: &Item) -> Option<&str> {
    item.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str)
}
