//! `POST /v1/auth/login/root`: `{email, password}` → 200 `{access_token, token_type, expires_in}`: a root token,
//! with no database, no session and no refresh token. The password is checked first, exactly as in
//! `/v1/auth/login` (same failures, same backoff, same rate limit); only then is a right password of an account
//! that is not its tenant's root refused, 403 `insufficient_role`. The token is revoked by the account's session
//! epoch (a password change or reset, a transfer of root, a disable).
//!
//! DynamoDB round trips: 5 in 3 round-trip times: the IP counter, the backoff claim and the email marker
//! concurrently; the user; one transaction (clearing the failures, and for an account made before tenancy its
//! new tenant). A wrong password past the five free failures writes its wait instead.

use keygate::{account, http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: SecretString,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, login(state, &req).await)
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: LoginRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let token = account::login_root(state, &body.email, &body.password, &client, now).await?;
    Ok(http::json(200, &token))
}
