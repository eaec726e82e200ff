//! `POST /v1/auth/login`: `{email, password}` → 200 token response.
//!
//! DynamoDB round trips: 5 in 3 round-trip times when the password is right: the IP counter, the backoff claim
//! (a conditional write that counts the attempt before argon2 runs) and the email marker, concurrently; the
//! user; one transaction (the session, clearing the failures). A wrong password past the five free failures
//! writes its wait (one more); an old hash is upgraded concurrently with the transaction. An attempt refused by
//! the backoff stops after the first three, with no argon2.

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
