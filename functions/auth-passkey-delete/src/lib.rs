//! `DELETE /v1/auth/passkey/{id}` → 204; the credential id is released and the owner is emailed a notice. A
//! session JWT only; another account's passkey (or none) is 404.
//!
//! DynamoDB round trips: 3 (the authenticating BatchGetItem, the passkey, one transaction: the passkey, its
//! credential marker, the account's passkey count, the `passkey_removed` event), and one SQS call.

use keygate::auth::{self, Access};
use keygate::{http, passkeys, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session_id = caller.interactive_session_id()?;
    passkeys::delete(state, &caller.user, session_id, http::path_param(req, "id"), now).await?;
    Ok(http::empty(204))
}
