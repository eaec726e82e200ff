//! `POST /v1/auth/register/verify`: `{email, code}` → 200 token response; the account is verified.
//!
//! DynamoDB round trips: 5 in 4 round-trip times (IP counter; the code attempt and the address's daily guess
//! budget, concurrently; the user; one transaction: consume the code and refund the guess, verify, session,
//! forget failed logins). One SQS call (the welcome mail) when it first verifies the account.

use keygate::email::Email;
use keygate::{account, http, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct VerifyRequest {
    email: String,
    code: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, verify(state, &req).await)
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: VerifyRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let client = state.client_info(req);
    let rule = state.config.rate_limits.verify_rule("register-verify");
    rate_limit::check_client_ip(&state.store, &rule, &client, now).await?;
    let tokens = account::verify_registration(state, &email, &body.code, &client, now).await?;
    Ok(http::json(200, &tokens))
}
