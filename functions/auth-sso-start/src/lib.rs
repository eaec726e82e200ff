//! `GET /v1/auth/sso/start?email=` or `?idp=` → `{authorization_url, state}`: home-realm discovery by the
//! address's domain (or the entry named), then an authorization-code request with PKCE (S256), its `state`,
//! `nonce` and verifier kept server-side (single use, 10 minutes). No entry is 404; both or neither parameter is
//! 422. Rate-limited per IP.
//!
//! DynamoDB round trips: 2 (the IP counter, the state); a Secrets Manager read when the IdP configuration is not
//! cached.

use keygate::email::Email;
use keygate::federation::signin::{self, Realm};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, start(state, &req).await)
}

async fn start(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let realm = match (http::query_param(req, "email"), http::query_param(req, "idp")) {
        (Some(email), None) => Realm::Email(Email::parse(email)?),
        (None, Some(idp)) => Realm::Idp(idp.to_owned()),
        _ => return Err(Error::InvalidField("Give exactly one of email and idp.".to_owned())),
    };
    let client = state.client_info(req);
    let started = signin::sso_start(state, realm, &client, now).await?;
    Ok(http::json(200, &started))
}
