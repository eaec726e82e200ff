//! `DELETE /v1/auth/me`: `{password?}` → 204. Deletes the caller's own account and everything it owns. Needs an
//! interactive session, and the password (a wrong one is 403 `invalid_current_password` and spends the account's
//! backoff), or, for an account without a password, a sign-in at most five minutes old (403
//! `reauthentication_required`). Root of a tenant that has other accounts must transfer root first (409
//! `transfer_root_first`); root as the last account deletes the tenant and its databases with it. 202
//! `{"status": "deleting"}` only past 2,500 items, which an administrator's `DELETE /v1/accounts/{id}` finishes.
//!
//! DynamoDB round trips: the authenticating BatchGetItem, the backoff claim and its release (with a password), the
//! tenant's accounts and databases (root only, GSI), the account, the mark, the purge's queries and batches (one
//! per 25 items), each database's transaction (root only), the marker read and one transaction. One SQS call.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts::{self, Deletion, OwnerProof};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct DeleteRequest {
    password: Option<SecretString>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, delete(state, &req).await)
}

async fn delete(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: DeleteRequest = http::optional_json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let proof = body.password.map_or(OwnerProof::Fresh, OwnerProof::Password);
    match accounts::delete_own(state, &caller.user, session, proof, now).await? {
        Deletion::Done => Ok(http::empty(204)),
        Deletion::Ongoing => Ok(http::json(202, &serde_json::json!({ "status": "deleting" }))),
    }
}
