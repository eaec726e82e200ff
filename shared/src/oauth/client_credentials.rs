//! The client-credentials grant (RFC 6749 §4.4): a service account signs in with its id and password and gets a
//! short-lived access JWT with no session and no refresh token. The token is stamped with the account's session
//! epoch, as a root token is, so a disable, a demotion or a deletion stops it at once (see
//! [`crate::auth::jwt_principal`]).

use serde::Serialize;

use super::{ClientCredentialsRequest, OAuthError};
use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::tenancy::service_accounts::{self, ClientGrant, ClientSignIn};
use crate::tokens::{self, AccessClaims};
use crate::{session, Error, State};

/// The token response of RFC 6749 §5.1: no refresh token (§4.4.3).
#[derive(Debug, Serialize)]
pub struct ClientToken {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// Authenticates the client and issues its token. Every way the client's authentication can fail is
/// `invalid_client`; a frontend account is `unauthorized_client`; a database not of the client's tenant
/// `invalid_request`; a scope beyond its role `invalid_scope`. Round trips: see
/// [`service_accounts::sign_in_client`]; signing makes none.
pub async fn grant(
    state: &State,
    request: ClientCredentialsRequest,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<ClientToken, OAuthError> {
    let sign_in = ClientSignIn {
        client_id: request.client_id,
        secret: request.client_secret,
        scopes: request.scopes,
        database: request.database,
    };
    let granted = service_accounts::sign_in_client(state, sign_in, client, now)
        .await
        .map_err(|err| match err {
            Error::InvalidCredentials => OAuthError::InvalidClient,
            Error::InsufficientRole(message) => OAuthError::UnauthorizedClient(message),
            Error::InvalidScope(message) => OAuthError::InvalidScope(message),
            Error::NotFound => OAuthError::InvalidRequest(
                "database_id or namespace names no database of the client's tenant.".to_owned(),
            ),
            other => other.into(),
        })?;
    let keys = state.keys.signing(now).await?;
    let ttl = state.config.access_token_ttl;
    let scope = granted.scopes.join(" ");
    let claims = claims(state, &granted, &scope, now);
    Ok(ClientToken {
        access_token: tokens::sign_access_token(&keys, &claims)?,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
    })
}

/// The claims of a client-credentials token: the account's claims as every access token has them (its tenant,
/// role and kind), the scopes granted, the database asked for, the session epoch as its stamp, and `client_id`
/// (RFC 9068 §2.2), which marks it as this kind of token. `amr` is `pwd`: the client secret is the account's
/// password.
fn claims(state: &State, granted: &ClientGrant, scope: &str, now: UnixTime) -> AccessClaims {
    let user = &granted.user;
    AccessClaims {
        scope: scope.to_owned(),
        amr: vec!["pwd".to_owned()],
        auth_time: now,
        db: granted.database.as_ref().map(|db| db.id.clone()),
        ns: granted.database.as_ref().map(|db| db.namespace.clone()),
        epoch: Some(user.session_epoch),
        client_id: Some(user.id.clone()),
        ..session::account_claims(state, user, now)
    }
}
