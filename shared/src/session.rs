//! Session flows: issuing token responses, refresh with rotation and reuse detection, logout.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::store::sessions::{self, Inactive, RevokeProof, Rotation, Session};
use crate::store::users::{self, User, UserView};
use crate::tokens::{self, AccessClaims, RefreshToken};
use crate::{secret, Error, State};

/// The body of every successful login, verification and refresh (DESIGN §4).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, `<session_id>.<secret>`.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The session both tokens belong to.
    pub session_id: String,
    /// The user.
    pub user: UserView,
}

/// Signs an access token for `session` and assembles the token response.
pub async fn token_response(
    state: &State,
    user: &User,
    session: &Session,
    refresh: &RefreshToken,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let keys = state.keys.get(now).await?;
    let ttl = state.config.access_token_ttl;
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: user.id.clone(),
        aud: state.config.audience.clone(),
        exp: now + ttl,
        iat: now,
        jti: secret::random_b64(16),
        sid: session.id.clone(),
        scope: tokens::SESSION_SCOPES.to_owned(),
        amr: session.amr.clone(),
        tenant: None,
    };
    Ok(TokenResponse {
        access_token: tokens::sign_access_token(&keys, &claims)?,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh.expose(),
        refresh_expires_in: session.expires_at - now,
        session_id: session.id.clone(),
        user: user.view(),
    })
}

/// Starts a session for a user who just proved who they are, and returns its tokens. One round trip.
pub async fn start(
    state: &State,
    user: &User,
    amr: &[&str],
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let (session, refresh) = Session::start(user, amr, client, state.config.refresh_token_ttl, now);
    sessions::create(&state.store, &session).await?;
    token_response(state, user, &session, &refresh, now).await
}

/// Exchanges a refresh token for new tokens, rotating it. Replaying a rotated-out token revokes the session,
/// except within the grace window right after a rotation, where two tabs may race (409 instead).
/// Three round trips: the session, the user, the conditional rotation.
pub async fn refresh(state: &State, raw: &str, now: UnixTime) -> Result<TokenResponse, Error> {
    const UNKNOWN: Error = Error::InvalidToken("The refresh token is invalid or has expired.");
    let presented = RefreshToken::parse(raw)?;
    let presented_hash = presented.hash();
    let session = sessions::get(&state.store, &presented.session_id)
        .await?
        .ok_or(UNKNOWN)?;
    let user = users::get(&state.store, &session.user_id)
        .await?
        .ok_or(Error::SessionRevoked)?;
    match session.check_active(&user, now) {
        Ok(()) => {}
        Err(Inactive::Revoked) => return Err(Error::SessionRevoked),
        Err(Inactive::Expired) => return Err(UNKNOWN),
    }
    if !secret::ct_eq(&session.secret_hash, &presented_hash) {
        return reused_or_unknown(state, &session, &presented_hash, now).await;
    }
    let next = RefreshToken::generate(&session.id);
    match sessions::rotate(
        &state.store,
        &session,
        &next.hash(),
        state.config.refresh_token_ttl,
        now,
    )
    .await?
    {
        Rotation::Rotated(rotated) => token_response(state, &user, &rotated, &next, now).await,
        // A concurrent request won. Judge the presented token against the session as it is now.
        Rotation::Lost(Some(current)) if current.revoked_at.is_none() => {
            reused_or_unknown(state, &current, &presented_hash, now).await
        }
        Rotation::Lost(_) => Err(Error::SessionRevoked),
    }
}

/// The presented token is not the session's current one. A rotated-out token is a replay: within the grace
/// window it is a racing tab (409), after it a theft signal that revokes the session. Any other secret proves
/// nothing, so it must not let a stranger who knows a session id end that session.
async fn reused_or_unknown(
    state: &State,
    session: &Session,
    presented_hash: &str,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let position = session
        .previous_hashes
        .iter()
        .position(|h| secret::ct_eq(h, presented_hash));
    match position {
        Some(0) if now - session.rotated_at <= state.config.refresh_reuse_grace => Err(Error::RefreshConflict),
        Some(_) => {
            tracing::warn!(session = %session.id, "refresh token reuse detected; revoking the session");
            sessions::revoke(&state.store, &session.id, RevokeProof::RefreshHash(presented_hash), now).await?;
            Err(Error::SessionRevoked)
        }
        None => Err(Error::InvalidToken("The refresh token is invalid or has expired.")),
    }
}

/// Logs out the session a refresh token belongs to. Idempotent, and silent about unknown sessions. One round trip.
pub async fn logout_with_refresh_token(state: &State, raw: &str, now: UnixTime) -> Result<(), Error> {
    let presented = RefreshToken::parse(raw)?;
    sessions::revoke(
        &state.store,
        &presented.session_id,
        RevokeProof::RefreshHash(&presented.hash()),
        now,
    )
    .await?;
    Ok(())
}

/// Logs out the session of a verified access token. Idempotent. One round trip.
pub async fn logout_session(state: &State, claims: &AccessClaims, now: UnixTime) -> Result<(), Error> {
    sessions::revoke(&state.store, &claims.sid, RevokeProof::Owner(&claims.sub), now).await?;
    Ok(())
}
