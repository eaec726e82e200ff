//! `POST /v1/auth/magic-link/send`: `{email, redirect_uri?}` → 202 whether or not the address has an account;
//! emails `<APP_URL>/magic-link?token=...`. A `redirect_uri` must be on the allow-list (422 otherwise).
//!
//! DynamoDB round trips: 4 for an unknown address (IP counter, two address counters, email marker), 5 for a
//! known one (plus the link).
//!
//! SQS: one SendMessage to the mail outbox (the link, or a decoy for an unknown address).

use keygate::email::Email;
use keygate::{http, passwordless, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct SendRequest {
    email: String,
    redirect_uri: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, send(state, &req).await)
}

async fn send(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: SendRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let redirect_uri = passwordless::check_redirect(state, body.redirect_uri.as_deref())?;
    let limits = &state.config.rate_limits;
    rate_limit::check_send(
        &state.store,
        limits,
        "magic-link-send",
        &state.client_info(req),
        &email,
        now,
    )
    .await?;
    passwordless::send_magic_link(state, &email, redirect_uri, now).await?;
    Ok(http::json(
        202,
        &serde_json::json!({ "status": "link_sent_if_account_exists" }),
    ))
}
