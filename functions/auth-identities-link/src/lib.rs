//! `POST /v1/auth/identities/link`: `{provider: "google", id_token}` or `{provider: "entra", code, state}` (a
//! state from link/start for this caller and session) → 201 the linked identity. An identity linked to any
//! account already is 409 `conflict`; a sign-in state, another caller's or another session's state is 401
//! `invalid_token`. Needs an interactive session.
//!
//! DynamoDB round trips: the authenticating BatchGetItem, (entra: the state), the identity's marker, one
//! transaction; the IdP's code exchange (entra) or its JWKS when not cached. Needs a sign-in at most five
//! minutes old (403 `reauthentication_required`); the owner is emailed a notice.

use keygate::auth::{self, Access};
use keygate::federation::linking;
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
enum LinkRequest {
    Google { id_token: String },
    Entra { code: String, state: String },
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, link(state, &req).await)
}

async fn link(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: LinkRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Interactive).await?;
    let session = caller.session().ok_or(Error::SessionRevoked)?;
    let linked = match body {
        LinkRequest::Google { id_token } => linking::google(state, &caller.user, session, &id_token, now).await?,
        LinkRequest::Entra { code, state: state_id } => {
            linking::entra(state, &caller.user, session, &code, &state_id, now).await?
        }
    };
    Ok(http::json(201, &linked))
}
