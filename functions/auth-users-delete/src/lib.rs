//! `DELETE /v1/auth/users/{userId}`: for back-office services (a service account's token or a PAT carrying
//! `admin:users`), deletes an account of the caller's tenant ranked below the caller and everything it owns, with
//! the contract of `DELETE /v1/accounts/{id}`: 204 when done, 202 `{"status": "deleting"}` when the request's
//! batch budget ran out (call again to continue). The first call already ends every credential of the account.
//! Another tenant's id is 404.
//!
//! DynamoDB round trips: as `DELETE /v1/accounts/{id}`: the authentication (1 with a JWT, 2 with a PAT), the
//! account, the mark (first call only), the purge's queries and batches, the marker read and one transaction.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts::Deletion;
use keygate::{admin, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope(admin::ADMIN_SCOPE)).await?;
    admin::require_service(&caller)?;
    let budget = usize::try_from(state.config.account_delete_batches).unwrap_or(1);
    match admin::delete_user(state, &caller, http::path_param(req, "userId"), budget, now).await? {
        Deletion::Done => Ok(http::empty(204)),
        Deletion::Ongoing => Ok(http::json(202, &serde_json::json!({ "status": "deleting" }))),
    }
}
