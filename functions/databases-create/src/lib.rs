//! `POST /v1/databases`: `{name, description?}` → 201 `{id, name, namespace, description, created_at}`, the
//! namespace being `<tenant slug>/<name>`. Needs `databases:write` (root and managers; a backend is 403
//! `insufficient_scope`). A name the tenant already uses is 409 `conflict`.
//!
//! DynamoDB round trips: 3 with a JWT (authentication, the tenant, one transaction: the database, its namespace
//! marker, the tenant's existence), 4 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::databases;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct CreateRequest {
    name: String,
    description: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, create(state, &req).await)
}

async fn create(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: CreateRequest = http::json_body(req)?;
    let name = databases::check_name(&body.name)?;
    let description = databases::check_description(body.description.as_deref())?;
    let caller = auth::authenticate(state, req, now, Access::Scope("databases:write")).await?;
    let database = databases::create(&state.store, &caller.user, name, description, now).await?;
    Ok(http::json(201, &database.view()))
}
