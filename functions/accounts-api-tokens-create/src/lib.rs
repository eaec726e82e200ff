//! `POST /v1/accounts/{id}/api-tokens`: `{name, scopes, expires_in_days?}` → 201 `{id, name, scopes, created_at,
//! expires_at, token}`. Root and managers (`accounts:write`) mint a PAT for a service account of their tenant
//! ranked below them. The scopes must be both the caller's and allowed by that account's role (403 otherwise).
//! `expires_in_days` absent is 90 days; `null` is a permanent token where the deployment sets
//! `KEYGATE_M2M_PERMANENT_TOKENS=true` (422 otherwise). An individual or frontend account is 422, another
//! tenant's 404. The plaintext token appears in this response only.
//!
//! DynamoDB round trips: 3 with a JWT (the authenticating BatchGetItem, the account, one transaction: the token
//! and the admin event), 4 with a PAT.

use keygate::api_tokens::{self, NewToken};
use keygate::auth::{self, Access};
use keygate::tenancy::accounts;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, create(state, &req).await)
}

async fn create(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let new: NewToken = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let account = accounts::find_managed_service(state, &caller.user, http::path_param(req, "id")).await?;
    let (token, secret) = api_tokens::create_for(state, &caller, &account, new, now).await?;
    let mut view = serde_json::to_value(token.view()).unwrap_or_default();
    view["token"] = secret.into();
    Ok(http::json(201, &view))
}
