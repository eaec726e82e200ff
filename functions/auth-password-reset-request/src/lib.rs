//! `POST /v1/auth/password-reset-request`: `{email}` → 202 whether or not the address has an account; emails a
//! code when it does.
//!
//! DynamoDB round trips: 2 for an unknown address (rate-limit counter, email marker), 3 for a known one (plus
//! the code).

use keygate::email::Email;
use keygate::{account, http, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct ResetRequest {
    email: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, request_reset(state, &req).await)
}

async fn request_reset(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: ResetRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let rule = state.config.rate_limits.send_rule("password-reset-request");
    rate_limit::check_client_ip(&state.store, &rule, &http::client_info(req), now).await?;
    account::request_password_reset(state, &email, now).await?;
    Ok(http::json(
        202,
        &serde_json::json!({ "status": "reset_code_sent_if_account_exists" }),
    ))
}
