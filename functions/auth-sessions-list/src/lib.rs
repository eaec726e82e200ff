//! `GET /v1/auth/sessions`: the caller's active sessions, newest first, with device labels, marking the current
//! one. No refresh-token material.
//!
//! Accepts a PAT with `sessions:read`.
//!
//! DynamoDB round trips: 2 (the authenticating BatchGetItem, one GSI query).

use keygate::auth::{self, Access};
use keygate::{http, session, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let principal = auth::authenticate(state, req, now, Access::Scope("sessions:read")).await?;
    let sessions = session::list(state, &principal.user, principal.session_id(), now).await?;
    Ok(http::json(200, &serde_json::json!({ "sessions": sessions })))
}
