//! `POST /v1/api-tokens`: `{name, scopes, expires_in_days?}` → 201 `{id, name, scopes, created_at, expires_at,
//! token}`. The plaintext token appears in this response only. Needs a session, or a PAT with `tokens:write`
//! (which cannot mint scopes it lacks). `expires_in_days: null` makes a permanent token, for a service account
//! only, where `KEYGATE_M2M_PERMANENT_TOKENS=true` (422 otherwise).
//!
//! DynamoDB round trips: 2 with a JWT (the authenticating BatchGetItem, one transaction: the new token and its
//! `api_token_created` event), 3 with a PAT.

use keygate::api_tokens::{self, NewToken};
use keygate::auth::{self, Access};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, create(state, &req).await)
}

async fn create(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let new: NewToken = http::json_body(req)?;
    let owner = auth::authenticate(state, req, now, Access::Scope("tokens:write")).await?;
    let (token, secret) = api_tokens::create(state, &owner, new, now).await?;
    let mut view = serde_json::to_value(token.view()).unwrap_or_default();
    view["token"] = secret.into();
    Ok(http::json(201, &view))
}
