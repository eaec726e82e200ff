//! `POST /v1/auth/passkey/register/options` (no body) → 200 `{ceremony_id, options}`, where `options` is
//! `{"publicKey": {...}}` for `navigator.credentials.create`: user verification required, a discoverable
//! credential preferred, the caller's existing credentials excluded. A session JWT only, signed in at most 5
//! minutes ago (403 `reauthentication_required`: a stolen session cannot add a passkey); only the same session can
//! finish the ceremony, within 5 minutes.
//!
//! DynamoDB round trips: 3 (the authenticating BatchGetItem, the caller's passkeys, the ceremony).

use keygate::auth::{self, Access};
use keygate::passkeys::registration;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, options(state, &req).await)
}

async fn options(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let options = registration::options(state, &caller.user, session, now).await?;
    Ok(http::json(200, &options))
}
