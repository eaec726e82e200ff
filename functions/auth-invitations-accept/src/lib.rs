//! `POST /v1/auth/invitations/accept`: `{token, password, name?}` → 200 token response. The invited account
//! becomes active and verified (the emailed link proves the mailbox) with that password, and signs in. A forged,
//! used or expired token is 401 `invalid_token`, as is one whose address has meanwhile got an account of its
//! own. Rate-limited per client IP like the code endpoints (429).
//!
//! DynamoDB round trips: 5 in 4 round-trip times (the per-IP counter; the invitation; the account and the
//! address's marker, concurrently; one transaction: consume the invitation, claim the address, activate the
//! account, start the session), one more when a pending registration holds the address.

use keygate::account::clean_name;
use keygate::tenancy::invitations;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct AcceptRequest {
    token: String,
    password: SecretString,
    name: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, accept(state, &req).await)
}

async fn accept(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: AcceptRequest = http::json_body(req)?;
    let name = clean_name(body.name.as_deref(), "name")?;
    let client = state.client_info(req);
    let tokens = invitations::accept(state, &body.token, &body.password, name, &client, now).await?;
    Ok(http::json(200, &tokens))
}
