//! `POST /v1/auth/register`: `{email, password, name?, tenant_name?}` → 202, and an emailed code.
//!
//! DynamoDB round trips: 5 for every address, new, pending or verified (IP counter, email marker, user, the
//! address's mail budget, one transaction), and one SQS call: the same calls whoever owns the address.

use keygate::account::{self, Registration};
use keygate::email::Email;
use keygate::{http, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct RegisterRequest {
    email: String,
    password: SecretString,
    name: Option<String>,
    tenant_name: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, register(state, &req).await)
}

async fn register(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: RegisterRequest = http::json_body(req)?;
    let registration = Registration {
        email: Email::parse(&body.email)?,
        password: body.password,
        name: account::clean_name(body.name.as_deref(), "name")?,
        tenant_name: account::clean_name(body.tenant_name.as_deref(), "tenant_name")?,
    };
    let rule = state.config.rate_limits.send_rule("register");
    rate_limit::check_client_ip(&state.store, &rule, &state.client_info(req), now).await?;
    account::register(state, registration, now).await?;
    Ok(http::json(202, &serde_json::json!({ "status": "verification_sent" })))
}
