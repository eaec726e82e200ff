//! `GET /v1/accounts?limit=&cursor=`: the caller's tenant's accounts in creation order, cursor-paginated →
//! `{items: [{id, kind, email | service_name, name, role, status, created_at}], next_cursor}`. Needs
//! `accounts:read`. `limit` is 1 to 100 (default 50); a cursor is bound to the tenant it was made for (422
//! `invalid_field` in any other, or when malformed).
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one GSI query), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:read")).await?;
    let limit = accounts::parse_limit(http::query_param(req, "limit"))?;
    let page = accounts::list(state, &caller.user, limit, http::query_param(req, "cursor")).await?;
    Ok(http::json(200, &page))
}
