//! `GET /v1/databases`: the tenant's databases, newest first, `{items, next_cursor}` (`next_cursor` is always
//! null: a tenant's databases fit one page). Needs `databases:read` (root, managers, backends).
//!
//! DynamoDB round trips: 2 with a JWT (authentication, one GSI query page), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::databases::{self, DatabaseView};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

#[derive(Serialize)]
struct Page {
    items: Vec<DatabaseView>,
    next_cursor: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("databases:read")).await?;
    let items = databases::list(&state.store, &caller.user).await?;
    Ok(http::json(
        200,
        &Page {
            items: items.iter().map(databases::Database::view).collect(),
            next_cursor: None,
        },
    ))
}
