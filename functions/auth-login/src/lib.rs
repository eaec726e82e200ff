//! `POST /v1/auth/login`: `{email, password, database_id? | namespace?}` → 200 token response, scoped to that
//! database of the account's tenant when one is named (404 `not_found` for any other, asked only once the
//! password is right; 422 for both fields or a malformed namespace).
//!
//! DynamoDB round trips: 5 in 3 round-trip times when the password is right: the IP counter, the backoff claim
//! (a conditional write that counts the attempt before argon2 runs) and the email marker, concurrently (with the
//! database read when one is named: 6); the user; one transaction (the session, clearing the failures, and for an
//! account made before tenancy its new tenant: one more per taken slug). A wrong password past the five free failures
//! writes its wait (one more); an old hash is upgraded concurrently with the transaction. An attempt refused by
//! the backoff stops after the first three, with no argon2.
//! An address routed to an LDAP directory (see `keygate::federation::directory`): 6 in 4 round-trip times (the
//! directory guard claimed beside the others; the identity's marker, then the account or the address's marker; the
//! transaction, which creates a first sign-in's account), plus the directory's bind, search and bind.
//!
//! The session's `signed_in` event is written in its transaction. A sign-in of an existing account also reads its
//! recent sessions beside that write (+1 query, no added round-trip time) and emails a notice from a new device.

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
