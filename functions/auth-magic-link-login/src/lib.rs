//! `POST /v1/auth/magic-link/login`: `{token}` → 200 token response (amr `email_link`), plus the link's
//! `redirect_uri` when it had one. A second use of a link is 401; the tokens of the first use stay valid.
//!
//! DynamoDB round trips: 4 (IP counter, conditional delete of the link, user read, one transaction: verify a
//! pending account, session, forget failed logins). One SQS call (the welcome mail) when it first verifies.
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

use keygate::{http, passwordless, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct LoginRequest {
    token: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, login(state, &req).await)
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: LoginRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let rule = state.config.rate_limits.verify_rule("magic-link-login");
    rate_limit::check_client_ip(&state.store, &rule, &client, now).await?;
    let login = passwordless::login_with_magic_link(state, &body.token, &client, now).await?;
    Ok(http::json(200, &login))
}
