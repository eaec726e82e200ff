//! `GET /v1/tenant`: the caller's tenant `{id, name, slug, created_at}`. Any account of the tenant, with any
//! credential (a frontend token too). An account made before tenancy that has not signed in since has none: 404.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, the tenant), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::tenants;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, get(state, &req).await)
}

async fn get(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Authenticated).await?;
    let tenant = tenants::of(&state.store, &caller.user).await?;
    Ok(http::json(200, &tenant.view()))
}
