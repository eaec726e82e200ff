//! `POST /v1/tenant/transfer-root`: `{account_id}` → 204. Root only (`tenant:admin`, and the caller's current role
//! is root: 403 `insufficient_scope` otherwise). The account, a verified, active individual account of the tenant,
//! becomes root and the caller a manager, in one transaction; the caller's sessions end (its tokens carry the
//! root role). Another tenant's account is 404; the caller itself, a service or unverified account 422.
//!
//! DynamoDB round trips: 3 with a JWT (authentication, the account, the transaction), 4 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::tenants;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct TransferRequest {
    account_id: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, transfer(state, &req).await)
}

async fn transfer(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: TransferRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Scope("tenant:admin")).await?;
    tenants::transfer_root(state, &caller.user, &body.account_id, now).await?;
    Ok(http::empty(204))
}
