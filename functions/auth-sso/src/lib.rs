//! `POST /v1/auth/sso`: `{code, state}` (keygate redeems the code at the IdP's token endpoint with the client
//! secret and the PKCE verifier) or `{id_token, idp}` (a single-page app that used MSAL; accepted once) → 200
//! token response (amr `entra`), or a 2FA challenge. The ID token is verified against the entry's JWKS (RS256,
//! `aud` its client id, `iss` for a `tid` on its allow-list, fresh, the stored nonce). A returning identity
//! (`tid` + `oid`) signs in to its account; a new one never attaches to an existing account by its (unverified)
//! address: 409 `account_exists`; with no account it creates one in the entry's tenant with its default role,
//! provisioned by the entry. A link state, a used or an expired state is 401 `invalid_token`. Rate-limited per IP.
//!
//! DynamoDB round trips: the IP counter, the state, the identity's marker, the account (or the address's marker
//! for a new identity), one transaction; the code exchange at the IdP.
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

use keygate::federation::signin;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct SsoRequest {
    code: Option<String>,
    state: Option<String>,
    id_token: Option<String>,
    idp: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, sign_in(state, &req).await)
}

async fn sign_in(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: SsoRequest = http::json_body(req)?;
    let client = state.client_info(req);
    let answer = match body {
        SsoRequest {
            code: Some(code),
            state: Some(state_id),
            id_token: None,
            idp: None,
        } => signin::sso_code(state, &code, &state_id, &client, now).await?,
        SsoRequest {
            code: None,
            state: None,
            id_token: Some(id_token),
            idp: Some(idp),
        } => signin::sso_id_token(state, &id_token, &idp, &client, now).await?,
        _ => {
            return Err(Error::InvalidField(
                "Give either code and state, or id_token and idp.".to_owned(),
            ))
        }
    };
    Ok(http::json(200, &answer))
}
