//! `POST /v1/api-tokens/{id}/rotate`: `{grace_period_seconds?}` → 200 with a new secret, same id and scopes. The
//! old secret keeps working for the grace period (default 24 hours, 0 allowed). Needs `tokens:write`, or the
//! token itself.
//!
//! DynamoDB round trips: 3 with a JWT (authentication, the token read, one transaction: the conditional update and
//! the `api_token_rotated` event), 4 with a PAT.

use keygate::auth::{self, Access};
use keygate::{api_tokens, http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct RotateRequest {
    #[serde(default, deserialize_with = "http::whole_number")]
    grace_period_seconds: Option<i64>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, rotate(state, &req).await)
}

async fn rotate(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: RotateRequest = http::optional_json_body(req)?;
    let id = http::path_param(req, "id").to_owned();
    let owner = auth::authenticate(state, req, now, Access::Authenticated).await?;
    let (token, secret) = api_tokens::rotate(state, &owner, &id, body.grace_period_seconds, now).await?;
    let mut view = serde_json::to_value(token.view()).unwrap_or_default();
    view["token"] = secret.into();
    Ok(http::json(200, &view))
}
