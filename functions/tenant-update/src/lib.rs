//! `PATCH /v1/tenant`: `{name}` → 200 the renamed tenant; the slug (and every namespace) stays. Needs
//! `tenant:write` (root and managers).
//!
//! DynamoDB round trips: 2 with a JWT (authentication, the conditional update), 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::tenants;
use keygate::{account, http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct UpdateRequest {
    name: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, update(state, &req).await)
}

async fn update(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: UpdateRequest = http::json_body(req)?;
    let name = account::clean_name(Some(&body.name), "name")?
        .ok_or_else(|| Error::InvalidField("name must not be empty.".to_owned()))?;
    let caller = auth::authenticate(state, req, now, Access::Scope("tenant:write")).await?;
    let tenant = tenants::rename(&state.store, &caller.user, &name, now).await?;
    Ok(http::json(200, &tenant.view()))
}
