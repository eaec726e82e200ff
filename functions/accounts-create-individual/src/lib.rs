//! `POST /v1/accounts/individual`: `{email, role, name?}` → 201 the invited account (status `invited`), whatever
//! the address. Needs `accounts:write` and a role ranked above `role` (403 `insufficient_scope`; root cannot be
//! created). Emails an invitation link `<APP_URL>/accept-invitation?token=…` (7 days, single use); an address
//! that already has an account gets a notice instead, and that invitation can never be accepted. No 409: the
//! answer must not tell which addresses have accounts. 429 when the address's hourly mail budget is spent.
//!
//! DynamoDB round trips: 5 in 3 round-trip times with a JWT (the authenticating BatchGetItem; the marker, the
//! tenant and the address's mail budget, concurrently; one transaction), one more with a PAT; one SQS call.

use keygate::account::clean_name;
use keygate::auth::{self, Access};
use keygate::email::Email;
use keygate::tenancy::{invitations, Role};
use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize)]
struct InviteRequest {
    email: String,
    role: String,
    name: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, invite(state, &req).await)
}

async fn invite(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope("accounts:write")).await?;
    let body: InviteRequest = http::json_body(req)?;
    let email = Email::parse(&body.email)?;
    let role = Role::parse(&body.role)?;
    let name = clean_name(body.name.as_deref(), "name")?;
    let view = invitations::invite(state, &caller.user, &email, role, name, now).await?;
    Ok(http::json(201, &view))
}
