//! `GET /v1/audit-events?account_id=&type=&limit=&cursor=`: the caller's tenant's security and admin events,
//! newest first, narrowed to one account or one type when asked → `{events: [...], next_cursor}` (each as in
//! `GET /v1/auth/events`). Needs `accounts:read`. Another tenant's account id simply matches nothing; a cursor of
//! another tenant, a malformed one, a non-UUID `account_id` or a type that is not snake_case is 422.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one GSI query), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::events::{self, FeedQuery};
use keygate::tenancy::accounts::parse_limit;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let limit = parse_limit(http::query_param(req, "limit"))?;
    let query = FeedQuery {
        account_id: http::query_param(req, "account_id").map(str::to_owned),
        kind: http::query_param(req, "type").map(str::to_owned),
    };
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:read")).await?;
    let page = events::list_tenant(
        state,
        &caller.user,
        limit,
        http::query_param(req, "cursor"),
        &query,
        now,
    )
    .await?;
    Ok(http::json(200, &page))
}
