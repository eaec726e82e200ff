//! `POST /v1/accounts/service`: `{service_name, password, role}` → 201 the account `{id, kind, service_name,
//! name, role, status, created_at}`. Needs `accounts:write` (root and managers), and a role ranked strictly below
//! the caller's (403 `insufficient_scope`: nobody creates a root, only root creates a manager). The password
//! policy (and the optional breach check) applies; a name the tenant already uses is 409 `conflict`.
//!
//! DynamoDB round trips: 2 with a JWT (authentication, one transaction: the account and its name marker), 3 with
//! a PAT; argon2 runs once.

use keygate::auth::{self, Access};
use keygate::tenancy::accounts::AccountView;
use keygate::tenancy::service_accounts::{self as accounts, NewServiceAccount};
use keygate::tenancy::Role;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct CreateRequest {
    service_name: String,
    password: SecretString,
    role: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, create(state, &req).await)
}

async fn create(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: CreateRequest = http::json_body(req)?;
    let new = NewServiceAccount {
        service_name: accounts::check_service_name(&body.service_name)?,
        role: Role::parse(&body.role)?,
        password: body.password,
    };
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let account = accounts::create_service(state, &caller, new, now).await?;
    Ok(http::json(201, &AccountView::from(&account)))
}
