//! `DELETE /v1/accounts/{id}`: deletes an account of the caller's tenant and everything it owns (sessions and
//! their history, PATs, second factors, codes, its email marker, its failed-login record) → 204 when done, 202 `{"status":
//! "deleting"}` when the request's batch budget (`KEYGATE_ACCOUNT_DELETE_BATCHES`) ran out: call again to
//! continue. The first call already disables the account and ends every credential. Needs `accounts:write` and a
//! role ranked above the account's (root cannot be deleted). Another tenant's account is 404.
//!
//! DynamoDB round trips with a JWT: the authenticating BatchGetItem, the account, the mark (first call only),
//! then per 25 sessions one GSI query, one query per session and one BatchWriteItem per 25 items, one GSI query
//! per 25 PATs, one query of its own partition (second factors), one of the address's partition, and at the end the marker read and one transaction. A PAT
//! adds one.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts::{self, Deletion};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let budget = usize::try_from(state.config.account_delete_batches).unwrap_or(1);
    match accounts::delete(state, &caller.user, http::path_param(req, "id"), budget, now).await? {
        Deletion::Done => Ok(http::empty(204)),
        Deletion::Ongoing => Ok(http::json(202, &serde_json::json!({ "status": "deleting" }))),
    }
}
