//! `POST /v1/auth/otp/login`: `{email, code}` → 200 token response (amr `otp`). A login code only; an unverified
//! account becomes verified, since the code proves the address.
//!
//! DynamoDB round trips: 5 in 4 round-trip times (IP counter; the code attempt and the address's daily guess
//! budget, concurrently; the user; one transaction: consume the code and refund the guess, verify, session,
//! forget failed logins). One SQS call (the welcome mail) when it first verifies the account.
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

use keygate::email::Email;
use keygate::store::codes::Purpose;
use keygate::{account, http, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    code: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, login(state, &req).await)
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: LoginRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let client = state.client_info(req);
    let rule = state.config.rate_limits.verify_rule("otp-login");
    rate_limit::check_client_ip(&state.store, &rule, &client, now).await?;
    let tokens = account::redeem_code_for_session(state, &email, Purpose::Login, &body.code, &client, now).await?;
    Ok(http::json(200, &tokens))
}
