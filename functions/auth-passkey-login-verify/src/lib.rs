//! `POST /v1/auth/passkey/login/verify`: `{ceremony_id, credential}` where `credential` is what
//! `navigator.credentials.get` returned → 200 token response, `amr` `["hwk" | "swk", "mfa"]` (user verification
//! is required, so no second-factor challenge follows). A credential that does not verify (wrong origin or
//! relying party, replayed, another account's, a counter that went backwards, no user verification) is 401
//! `invalid_credentials` and spends the account's backoff as a wrong password does; a counter that went backwards
//! also emails the owner. An unknown, used or expired ceremony is 401 `invalid_token`. Rate-limited per IP.
//!
//! DynamoDB round trips: 7 in 5 round-trip times (the per-IP counter and the ceremony taken; the credential's
//! owner; the user and the passkey; the backoff claim; one transaction: the passkey's counter and last use, the
//! session, the cleared backoff).
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

use keygate::passkeys::authentication;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

#[derive(Deserialize)]
struct VerifyRequest {
    ceremony_id: String,
    credential: PublicKeyCredential,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, verify(state, &req).await)
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: VerifyRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let tokens = authentication::login_verify(state, &body.ceremony_id, &body.credential, &client, now).await?;
    Ok(http::json(200, &tokens))
}
