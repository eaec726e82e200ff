//! `POST /v1/auth/2fa/verify`: `{challenge_token, code}`, where the code is a TOTP code or a backup code → 200
//! what the first factor would have given (a token response, or the root login's token), with both factors and
//! `mfa` in `amr`. A wrong, used or replayed code is 400 `invalid_code` (five kill the challenge); an unknown,
//! used, expired or dead challenge is 401 `invalid_token`.
//!
//! DynamoDB round trips: 6 in 3 round-trip times (the per-IP counter and the challenge; the two backoff claims and
//! one BatchGetItem of the user, the factors and the database; one transaction: the code spent, the challenge
//! used, the backoffs cleared, the session started). A wrong code: up to three writes (the challenge's count, the
//! backoffs' waits) in place of the transaction. One SQS call when a backup code is used.

use keygate::mfa::challenge;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct VerifyRequest {
    challenge_token: String,
    code: String,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, verify(state, &req).await)
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: VerifyRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let answer = challenge::verify(state, &body.challenge_token, &body.code, &client, now).await?;
    Ok(http::json(200, &answer))
}
