//! `GET /v1/auth/passkey/list`: the caller's passkeys, oldest first: `{passkeys: [{id, name, created_at,
//! last_used_at, backup_eligible, backed_up}]}`. Any session JWT, or a PAT with `profile:read`.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one query of the caller's partition), 3
//! with a PAT.

use keygate::auth::{self, Access};
use keygate::{http, passkeys, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("profile:read")).await?;
    let passkeys = passkeys::list(state, &caller.user).await?;
    Ok(http::json(200, &serde_json::json!({ "passkeys": passkeys })))
}
