//! `POST /v1/auth/login`: `{email, password}` → 200 token response.
//!
//! DynamoDB round trips: 4, the first two concurrent (IP counter, one BatchGetItem of the email marker and the failure record, the user,
//! then the new session or the failure count); one more to clear earlier failures, to claim a backoff slot, or
//! to upgrade a hash made with old parameters. An attempt refused by the backoff stops after 2, with no argon2.

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
    let tokens = account::login(state, &body.email, &body.password, &client, now).await?;
    Ok(http::json(200, &tokens))
}
