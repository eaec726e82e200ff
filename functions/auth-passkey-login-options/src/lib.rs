//! `POST /v1/auth/passkey/login/options`: `{}` for a usernameless sign-in, `{email}` for the passkeys of that
//! address's account, or `{challenge_token}` to answer a second-factor challenge with a passkey → 200
//! `{ceremony_id, options}`, where `options` is `{"publicKey": {...}}` for `navigator.credentials.get`. An
//! address with no account (or no passkey) gets options of the same shape, with credential ids that are stable
//! per address and cannot be told from real ones. Both fields at once are 422; rate-limited per IP.
//!
//! DynamoDB round trips: 2 usernameless (the per-IP counter, the ceremony); 5 in 4 round-trip times with an
//! email (the counter; the marker; the user and its passkeys; the ceremony); 4 with a challenge token (the
//! counter, the challenge, the passkeys, the ceremony).

use keygate::passkeys::authentication::{self, Purpose};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct OptionsRequest {
    email: Option<String>,
    challenge_token: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, options(state, &req).await)
}

async fn options(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: OptionsRequest = http::optional_json_body(req)?;
    let purpose = match (body.email.as_deref(), body.challenge_token.as_deref()) {
        (None, None) => Purpose::Discoverable,
        (Some(email), None) => Purpose::Email(email),
        (None, Some(token)) => Purpose::Challenge(token),
        (Some(_), Some(_)) => {
            return Err(Error::InvalidField(
                "Give email or challenge_token, not both.".to_owned(),
            ))
        }
    };
    let client = state.client_info(req);
    let options = authentication::login_options(state, purpose, &client, now).await?;
    Ok(http::json(200, &options))
}
