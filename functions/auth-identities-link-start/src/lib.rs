//! `GET /v1/auth/identities/link/start?provider=entra[&idp=]` → `{authorization_url, state}`: starts linking an
//! Entra ID account to the caller; the stored state names the caller, its session and the purpose "link", so it
//! is refused at `/v1/auth/sso` and by anyone else. The entry is `idp`, or the one for the caller's address
//! domain (none: 404). Needs an interactive session signed in at most five minutes ago (403
//! `reauthentication_required`): a new way into the account is not something a stolen session may add.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, the state); a Secrets Manager read when the IdP
//! configuration is not cached.

use keygate::auth::{self, Access};
use keygate::federation::linking;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, start(state, &req).await)
}

async fn start(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    if http::query_param(req, "provider") != Some("entra") {
        return Err(Error::InvalidField(
            "provider must be entra (a Google identity links with its ID token).".to_owned(),
        ));
    }
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let started = linking::start(state, &caller.user, session, http::query_param(req, "idp"), now).await?;
    Ok(http::json(200, &started))
}
