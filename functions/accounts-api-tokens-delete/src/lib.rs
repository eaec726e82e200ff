//! `DELETE /v1/accounts/{id}/api-tokens/{tokenId}` → 204: revokes a PAT of a service account of the caller's
//! tenant ranked below the caller, at once, and records the admin event. Needs `accounts:write`. Another
//! tenant's account, or a token of another account, is 404.
//!
//! DynamoDB round trips: 3 with a JWT (the authenticating BatchGetItem, the account, one transaction: the
//! conditional delete and the event), 4 with a PAT.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts;
use keygate::{api_tokens, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let account = accounts::find_managed_service(state, &caller.user, http::path_param(req, "id")).await?;
    api_tokens::revoke_for(state, &caller, &account, http::path_param(req, "tokenId"), now).await?;
    Ok(http::empty(204))
}
