//! `POST /v1/auth/2fa/verify`: `{challenge_token, code}`, where the code is a TOTP code or a backup code, or
//! `{challenge_token, ceremony_id, credential}` with a passkey ceremony started for the challenge at
//! `/v1/auth/passkey/login/options` → 200 what the first factor would have given (a token response, or the root
//! login's token), with both factors and `mfa` in `amr`. A wrong, used or replayed code is 400 `invalid_code`; a
//! passkey that does not verify is 401 `invalid_credentials` (either counts against the challenge: five kill it);
//! an unknown, used, expired or dead challenge or ceremony is 401 `invalid_token`.
//!
//! DynamoDB round trips with a code: 6 in 3 round-trip times (the per-IP counter and the challenge; the two
//! backoff claims and one BatchGetItem of the user, the factors and the database; one transaction: the code spent,
//! the challenge used, the backoffs cleared, the session started with its `signed_in` event, and a backup code's
//! `backup_code_used` event). A wrong code: up to three writes in place of the transaction. One SQS call when a
//! backup code is used. With a passkey: 9 in 6 round-trip times (the counter,
//! the challenge and the ceremony; the credential's owner; the user and the passkey; the backoff claim; the
//! BatchGetItem; one transaction).
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

use keygate::mfa::challenge;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

#[derive(Deserialize)]
struct VerifyRequest {
    challenge_token: String,
    code: Option<String>,
    ceremony_id: Option<String>,
    credential: Option<PublicKeyCredential>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, verify(state, &req).await)
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: VerifyRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let answer = match (&body.code, &body.ceremony_id, &body.credential) {
        (Some(code), None, None) => challenge::verify(state, &body.challenge_token, code, &client, now).await?,
        (None, Some(ceremony_id), Some(credential)) => {
            challenge::verify_with_passkey(state, &body.challenge_token, ceremony_id, credential, &client, now).await?
        }
        _ => {
            return Err(Error::InvalidRequest(
                "Give code, or ceremony_id with credential.".to_owned(),
            ))
        }
    };
    Ok(http::json(200, &answer))
}
