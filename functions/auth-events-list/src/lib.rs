//! `GET /v1/auth/events?limit=&cursor=`: the caller's own security events, newest first: `{events: [{id, type, at,
//! ip, user_agent, device, actor_id?, target_id, tenant_id, details}], next_cursor}`. Any session JWT, or a PAT
//! with `profile:read`. A cursor from another account, or a forged one, is 422; `limit` is 1 to 100 (50).
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one query of the caller's events), 3 with
//! a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts::parse_limit;
use keygate::{events, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let limit = parse_limit(http::query_param(req, "limit"))?;
    let cursor = http::query_param(req, "cursor");
    let caller = auth::authenticate(state, req, now, Access::Scope("profile:read")).await?;
    let page = events::list_own(state, &caller.user, limit, cursor, now).await?;
    Ok(http::json(200, &page))
}
