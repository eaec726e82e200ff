//! `POST /v1/auth/login`: `{email, password, database_id? | namespace?}` → 200 token response, scoped to that
//! database of the account's tenant when one is named (404 `not_found` for any other, asked only once the
//! password is right; 422 for both fields or a malformed namespace).
//!
//! DynamoDB round trips when the password is right: 4 in 2 round-trip times for an account that signed in
//! before (from 3 before this release): the IP counter, the backoff claim (a conditional write that counts the
//! attempt before argon2 runs) and the email marker, which carries a copy of the account, concurrently (with the
//! database read when one is named: 5); then one transaction (the session, clearing the failures, and a check that
//! the account is still exactly the copy). Without a usable copy (a first sign-in, an account made before
//! tenancy, or an account changed since its copy was made) the account is read before the transaction, which
//! then also stores the copy: 5 in 3 round-trip times (for an account made before tenancy the transaction also
//! makes its tenant: one more per taken slug). A wrong password reads the account too, whichever way, so a
//! failure costs the same calls for any address; past the five free failures it writes its wait (one more). An
//! old hash is upgraded after the transaction (+2). An attempt refused by the backoff stops after the first
//! three, with no argon2.
//! An address routed to an LDAP directory (see `keygate::federation::directory`): 6 in 4 round-trip times (the
//! directory guard claimed beside the others; the identity's marker, then the account or the address's marker; the
//! transaction, which creates a first sign-in's account), plus the directory's bind, search and bind.
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.
//! Secrets Manager: none warm (both secrets are cached); on a cold start the IdP configuration and the signing key,
//! side by side, before the first DynamoDB round trip.

use keygate::tenancy::databases::Selector;
use keygate::{account, http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: SecretString,
    database_id: Option<String>,
    namespace: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, login(state, &req).await)
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: LoginRequest = http::json_body(req)?;
    let database = Selector::from_fields(body.database_id, body.namespace)?;
    let client = state.client_info(req);
    let tokens = account::login(state, &body.email, &body.password, database.as_ref(), &client, now).await?;
    Ok(http::json(200, &tokens))
}
