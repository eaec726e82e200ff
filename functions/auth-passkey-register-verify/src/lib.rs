//! `POST /v1/auth/passkey/register/verify`: `{ceremony_id, credential, name?}` where `credential` is what
//! `navigator.credentials.create` returned (its `toJSON()`) → 201 the new passkey. A session JWT only, the one
//! that started the ceremony. A credential id registered to any account is 409 `passkey_already_registered`; a
//! credential from another origin or relying party, or without user verification, is 400 `invalid_passkey`; an
//! unknown, used or expired ceremony is 401 `invalid_token`. The owner is emailed a notice.
//!
//! DynamoDB round trips: 3 (the authenticating BatchGetItem, the ceremony taken, one transaction: the passkey,
//! its credential marker, the account's passkey count, the `passkey_added` event), and one SQS call.

use keygate::auth::{self, Access};
use keygate::passkeys::registration;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

#[derive(Deserialize)]
struct VerifyRequest {
    ceremony_id: String,
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, verify(state, &req).await)
}

async fn verify(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: VerifyRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let passkey = registration::verify(
        state,
        &caller.user,
        session,
        &body.ceremony_id,
        &body.credential,
        body.name.as_deref(),
        now,
    )
    .await?;
    Ok(http::json(201, &passkey))
}
