//! `POST /v1/scoped-tokens`: `{resource, scopes, expires_in_days?, label?}` → 201 `{id, token, resource, scopes,
//! label, created_at, expires_at}`. The token (`kgs_...`) appears in this response only: a visitor's credential
//! for one resource (`<type>:<id>`, the type one of `KEYGATE_SCOPED_TOKEN_RESOURCES`), with scopes the creator's
//! credential carries and `KEYGATE_SCOPED_TOKEN_SCOPES` allows, for 1 to 365 days (default 30). Needs a session,
//! or a PAT with `tokens:write`. A creator holds at most 100 live ones (409 `limit_reached`). With no resource
//! type declared the feature is off and this answers 404 before anything else.
//!
//! DynamoDB round trips: 3 with a JWT (the authenticating BatchGetItem, the creator's ledger GetItem, one
//! TransactWriteItems for the token, the ledger and the `scoped_token_created` event), 4 with a PAT; two more per retry when a concurrent creation
//! of the same creator wins the ledger first (at most two retries, then 409 `conflict`).

use keygate::auth::{self, Access};
use keygate::scoped_tokens::{self, NewScopedToken};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct CreateRequest {
    resource: String,
    scopes: Vec<String>,
    /// Absent → `None`; `null` → `Some(None)`, which is 422 rather than the default.
    #[serde(default, deserialize_with = "http::nullable_whole_number")]
    expires_in_days: Option<Option<i64>>,
    label: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, create(state, &req).await)
}

async fn create(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    if !scoped_tokens::enabled(&state.config) {
        return Err(Error::NotFound);
    }
    let now = state.clock.now();
    let body: CreateRequest = http::json_body(req)?;
    let creator = auth::authenticate(state, req, now, Access::Scope("tokens:write")).await?;
    let new = NewScopedToken {
        resource: body.resource,
        scopes: body.scopes,
        expires_in_days: body.expires_in_days,
        label: body.label,
    };
    let (token, secret) = scoped_tokens::create(state, &creator, new, now).await?;
    let mut view = serde_json::to_value(token.view()).unwrap_or_default();
    view["token"] = secret.into();
    Ok(http::json(201, &view))
}
