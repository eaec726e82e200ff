//! `GET /v1/accounts/{id}/api-tokens`: `{tokens: [...]}`, the live PATs of a service account of the caller's
//! tenant ranked below the caller, newest first: metadata only. Needs `accounts:write` (whoever may mint and
//! revoke them). Another tenant's account is 404.
//!
//! DynamoDB round trips: 3 with a JWT (the authenticating BatchGetItem, the account, one GSI query), 4 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts;
use keygate::{api_tokens, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, list(state, &req).await)
}

async fn list(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let account = accounts::find_managed_service(state, &caller.user, http::path_param(req, "id")).await?;
    let tokens: Vec<_> = api_tokens::list_of(state, &account, now)
        .await?
        .iter()
        .map(|t| t.view())
        .collect();
    Ok(http::json(200, &serde_json::json!({ "tokens": tokens })))
}
