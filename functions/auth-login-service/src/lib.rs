//! `POST /v1/auth/login/service`: `{service_name, password, tenant_id | database_id | namespace,
//! frontend_user_id?}` → 200 token response. The tenant comes from `tenant_id`, or from the database, which the
//! session is then scoped to. A frontend-role account must name `frontend_user_id` (1 to 128 printable
//! characters; its tokens carry it as `fuid`) and other accounts must not (422 `invalid_field`, told only once
//! the password is right). Unknown tenant, database, name and wrong password are all 401 `invalid_credentials`.
//! The backoff applies, never the 100-failure lock.
//!
//! DynamoDB round trips: 5 in 3 round-trip times with `tenant_id`: the IP counter, the backoff claim and the
//! name marker, concurrently; the user; one transaction (the session, clearing the failures). With a database
//! 6 in 4: its read runs beside the IP counter, and the claim and the marker follow it. A failure past the five
//! free ones writes its wait instead.

use keygate::tenancy::service_accounts::{self as accounts, ServiceLogin, ServiceTenant};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct LoginRequest {
    service_name: String,
    password: SecretString,
    tenant_id: Option<String>,
    database_id: Option<String>,
    namespace: Option<String>,
    frontend_user_id: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, login(state, &req).await)
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: LoginRequest = http::json_body(req)?;
    let login = ServiceLogin {
        service_name: accounts::check_service_name(&body.service_name)?,
        tenant: ServiceTenant::from_fields(body.tenant_id, body.database_id, body.namespace)?,
        frontend_user_id: accounts::check_frontend_user_id(body.frontend_user_id)?,
        password: body.password,
    };
    let client = state.client_info(req);
    let tokens = accounts::login_service(state, login, &client, now).await?;
    Ok(http::json(200, &tokens))
}
