//! `POST /v1/auth/google`: `{id_token, nonce?}` → 200 token response (amr `google`), or a 2FA challenge for an
//! account with 2FA on. The ID token must be Google's (RS256, `iss` Google, `aud` one of
//! `KEYGATE_GOOGLE_CLIENT_IDS`, fresh, `email_verified`), carry `nonce` when one is given, and is accepted once.
//! A returning identity signs in to its account; a new one links to an existing account only for an address
//! Google is authoritative for (`gmail.com`, `googlemail.com`, the token's `hd`), else 409 `account_exists`; with
//! no account it creates one in a tenant of its own. 404 while Google sign-in is off. Rate-limited per IP.
//!
//! DynamoDB round trips: the IP counter, the identity's marker, the account (or the address's marker and account
//! for a new identity), one transaction (the spent token, the session or challenge, a link, a new account and
//! tenant). The JWKS is fetched when not cached.
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

use keygate::federation::signin;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct GoogleRequest {
    id_token: String,
    nonce: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, sign_in(state, &req).await)
}

async fn sign_in(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: GoogleRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let answer = signin::google(state, &body.id_token, body.nonce.as_deref(), &client, now).await?;
    Ok(http::json(200, &answer))
}
