//! `POST /v1/auth/session/database`: `{"database_id": "..."}`, `{"namespace": "<slug>/<name>"}`, or
//! `{"database_id": null}` (or `{}`) for none → 200 token response for the same session, its refresh token
//! rotated and its tokens re-scoped. Needs an interactive session (a session JWT: PATs, root tokens and frontend
//! tokens are 403 `insufficient_scope`), so a user who signed in with a code or a link can switch database without a password.
//! A database of another tenant, or none, is 404; both fields at once or a malformed namespace 422.
//!
//! DynamoDB round trips: 3 (the authenticating BatchGetItem, the database, the rotation transaction); 2 when
//! clearing the database.

use keygate::auth::{self, Access};
use keygate::tenancy::databases::Selector;
use keygate::{http, session, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Default, Deserialize)]
struct SwitchRequest {
    database_id: Option<String>,
    namespace: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, switch(state, &req).await)
}

async fn switch(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: SwitchRequest = http::optional_json_body(req)?;
    let database = Selector::from_fields(body.database_id, body.namespace)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let current = caller
        .session()
        .ok_or(Error::InsufficientScope("This action needs an interactive session."))?;
    let tokens = session::switch_database(state, &caller.user, current, database.as_ref(), now).await?;
    Ok(http::json(200, &tokens))
}
