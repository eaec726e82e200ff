//! `POST /v1/auth/password-reset-request`: `{email}` → 202 whether or not the address has an account; emails a
//! code when it does. The same flow as `POST /v1/auth/otp/send` with `purpose: reset`.
//!
//! DynamoDB round trips: 4 for an unknown address (IP counter, two address counters, email marker), 5 for a
//! known one (plus the code).
//!
//! SQS: one SendMessage to the mail outbox (the code, or a decoy for an unknown address).

use keygate::email::Email;
use keygate::store::codes::Purpose;
use keygate::{account, http, Error, State};
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
    account::request_code(state, &email, Purpose::PasswordReset, &state.client_info(req), now).await?;
    Ok(http::json(
        202,
        &serde_json::json!({ "status": "code_sent_if_account_exists" }),
    ))
}
