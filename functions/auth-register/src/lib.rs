//! `POST /v1/auth/register`: `{email, password, name?, tenant_name?}` → 202, and an emailed code.
//!
//! DynamoDB round trips: 5 for a new or an already verified address (IP counter, two address counters, email
//! marker, then the transaction or the user read), 6 for a pending one (marker, user, transaction).
//!
//! SQS: one SendMessage to the mail outbox (the code, the already-registered notice, or a decoy after a lost race).

use keygate::account::{self, Registration};
use keygate::email::Email;
use keygate::{http, passwords, rate_limit, Error, State};
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
    passwords::check_policy(&body.password)?;
    let registration = Registration {
        email: Email::parse(&body.email)?,
        password: body.password,
        name: account::clean_name(body.name.as_deref(), "name")?,
        tenant_name: account::clean_name(body.tenant_name.as_deref(), "tenant_name")?,
    };
    let limits = &state.config.rate_limits;
    rate_limit::check_send(
        &state.store,
        limits,
        "register",
        &state.client_info(req),
        &registration.email,
        now,
    )
    .await?;
    account::register(state, registration, now).await?;
    Ok(http::json(202, &serde_json::json!({ "status": "verification_sent" })))
}
