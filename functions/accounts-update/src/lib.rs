//! `PATCH /v1/accounts/{id}`: `{role?, name?, status?: "active" | "disabled"}` → 200 the account. Needs
//! `accounts:write`, and the caller's role must rank strictly above the account's current role and the new one
//! (403 `insufficient_scope`: nobody acts on root or a peer, and nobody makes a root). Another tenant's account
//! is 404. A demotion signs the account out (new session epoch) and narrows its PATs at their next use; a disable
//! ends every credential (both epochs); `status: active` on a service account also clears its failed logins. An
//! empty `name` removes it. An invited account's status cannot be set (422).
//!
//! DynamoDB round trips: 3 with a JWT (the authenticating BatchGetItem, the account, one conditional
//! transaction), 4 with a PAT; the transaction is skipped when nothing changes.

use keygate::account::clean_name;
use keygate::auth::{self, Access};
use keygate::store::users::AccountStatus;
use keygate::tenancy::accounts::{self, Patch};
use keygate::tenancy::Role;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct PatchRequest {
    role: Option<String>,
    name: Option<String>,
    status: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, update(state, &req).await)
}

async fn update(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let body: PatchRequest = http::json_body(req)?;
    let status = match body.status.as_deref() {
        None => None,
        Some("active") => Some(AccountStatus::Active),
        Some("disabled") => Some(AccountStatus::Disabled),
        Some(_) => return Err(Error::InvalidField("status must be active or disabled.".to_owned())),
    };
    let patch = Patch {
        role: body.role.as_deref().map(Role::parse).transpose()?,
        name: body
            .name
            .as_deref()
            .map(|name| clean_name(Some(name), "name"))
            .transpose()?,
        status,
    };
    let view = accounts::update(state, &caller, http::path_param(req, "id"), patch, now).await?;
    Ok(http::json(200, &view))
}
