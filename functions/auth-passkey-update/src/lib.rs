//! `PATCH /v1/auth/passkey/{id}`: `{name}` (1 to 64 characters) → 200 the passkey. A session JWT only; another
//! account's passkey (or none) is 404.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, one conditional update).

use keygate::auth::{self, Access};
use keygate::{http, passkeys, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct UpdateRequest {
    name: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, update(state, &req).await)
}

async fn update(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: UpdateRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let passkey = passkeys::rename(state, &caller.user, http::path_param(req, "id"), &body.name).await?;
    Ok(http::json(200, &passkey))
}
