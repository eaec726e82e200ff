//! `DELETE /v1/databases/{id}`: removes one database of the caller's tenant → 204; sessions scoped to it fail
//! at their next refresh (401 `session_revoked`). Another tenant's is 404. Needs `databases:write`.
//!
//! DynamoDB round trips: 3 with a JWT (authentication, the database, one transaction deleting it and its
//! namespace marker), 4 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::databases;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let id = http::path_param(req, "id").to_owned();
    let caller = auth::authenticate(state, req, now, Access::Scope("databases:write")).await?;
    databases::delete(&state.store, &caller.user, &id).await?;
    Ok(http::empty(204))
}
