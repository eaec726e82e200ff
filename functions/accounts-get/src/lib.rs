//! `GET /v1/accounts/{id}`: one account of the caller's tenant; another tenant's is 404, exactly as a missing
//! one. Needs `accounts:read`.
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, the account: a strongly consistent read),
//! 3 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts::{self, AccountView};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, get(state, &req).await)
}

async fn get(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:read")).await?;
    let account = accounts::find(state, &caller.user, http::path_param(req, "id")).await?;
    Ok(http::json(200, &AccountView::from(&account)))
}
