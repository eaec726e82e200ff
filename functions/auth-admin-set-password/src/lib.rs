//! `POST /v1/auth/admin/set-password`: `{user_id, new_password}` → 204. For back-office services: a service
//! account's token or a PAT carrying `admin:users` (a person's own session is 403). The target must be an account
//! of the caller's tenant ranked below the caller (another tenant's is 404). The password passes the same policy
//! as any other; both of the target's epochs move, so its sessions and PATs stop at once, and an individual is
//! emailed a notice. An account provisioned by Entra ID or LDAP answers 409 `password_managed_externally`.
//!
//! DynamoDB round trips: 3 with a JWT (the authenticating BatchGetItem, the target, one transaction: the password,
//! the admin event, and the login copy dropped from the email marker), 4 with a PAT. One SQS call.

use keygate::auth::{self, Access};
use keygate::{admin, http, Error, State};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct SetPasswordRequest {
    user_id: String,
    new_password: SecretString,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, set_password(state, &req).await)
}

async fn set_password(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let body: SetPasswordRequest = http::json_body(req)?;
    let caller = auth::authenticate(state, req, now, Access::Scope(admin::ADMIN_SCOPE)).await?;
    admin::require_service(&caller)?;
    admin::set_password(state, &caller, &body.user_id, &body.new_password, now).await?;
    Ok(http::empty(204))
}
