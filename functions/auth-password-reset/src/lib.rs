//! `POST /v1/auth/password-reset`: `{email, code, new_password}` → 204. Revokes every session of the user and
//! emails a notice.
//!
//! DynamoDB round trips: 5 in 4 round-trip times (IP counter; the code attempt and the address's daily guess
//! budget, concurrently; the user; one transaction: consume the code and refund the guess, the password and both
//! epochs, forget failed logins, drop the login copy from the email marker). One SQS call (the notice).

use keygate::email::Email;
use keygate::{account, http, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct ResetRequest {
    email: String,
    code: String,
    new_password: SecretString,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, reset(state, &req).await)
}

async fn reset(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: ResetRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let rule = state.config.rate_limits.verify_rule("password-reset");
    rate_limit::check_client_ip(&state.store, &rule, &state.client_info(req), now).await?;
    account::reset_password(state, &email, &body.code, &body.new_password, now).await?;
    Ok(http::empty(204))
}
