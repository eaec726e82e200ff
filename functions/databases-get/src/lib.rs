//! `GET /v1/databases/{id}`: one database of the caller's tenant. Another tenant's is 404, exactly as a missing
//! one. Needs `databases:read`.
//!
//! DynamoDB round trips: 2 with a JWT (authentication, the database), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::databases;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, get(state, &req).await)
}

async fn get(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let id = http::path_param(req, "id").to_owned();
    let caller = auth::authenticate(state, req, now, Access::Scope("databases:read")).await?;
    let database = databases::get(&state.store, &caller.user, &id).await?;
    Ok(http::json(200, &database.view()))
}
