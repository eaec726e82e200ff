//! `POST /v1/auth/refresh`: `{refresh_token}` → 200 token response with the refresh token rotated.
//!
//! DynamoDB round trips: 3 in 2 round-trip times (the rate-limit counter beside one BatchGetItem of the session and
//! its owner, whom the token names; the rotation: one transaction that also records the old hash in the session's
//! history). A session scoped to a database reads the database before the rotation (4 in 3), as does a token of
//! the older form `<session_id>.<secret>` (the session, then the owner with the database). A replay of the last
//! token adds one to revoke the session, of an older one two (its history item, the revocation).
//! A directory account's session re-asks its LDAP directory at most every 15 minutes: one more (its identities),
//! and one transaction more when the person is gone (both epochs move).

use keygate::{http, session, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, refresh(state, &req).await)
}

async fn refresh(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: RefreshRequest = http::json_body(req)?;
    let tokens = session::refresh(state, &body.refresh_token, &state.client_info(req), now).await?;
    Ok(http::json(200, &tokens))
}
