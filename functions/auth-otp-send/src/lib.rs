//! `POST /v1/auth/otp/send`: `{email, purpose: "login" | "reset"}` → 202 whether or not the address has an
//! account; emails a 6-digit code bound to that purpose. `reset` is the password-reset-request flow.
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
#[serde(rename_all = "snake_case")]
enum OtpPurpose {
    Login,
    Reset,
}

#[derive(Deserialize)]
struct SendRequest {
    email: String,
    purpose: OtpPurpose,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, send(state, &req).await)
}

async fn send(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: SendRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let purpose = match body.purpose {
        OtpPurpose::Login => Purpose::Login,
        OtpPurpose::Reset => Purpose::PasswordReset,
    };
    account::request_code(state, &email, purpose, &state.client_info(req), now).await?;
    Ok(http::json(
        202,
        &serde_json::json!({ "status": "code_sent_if_account_exists" }),
    ))
}
