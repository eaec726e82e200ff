//! `POST /v1/auth/admin/users/{userId}/reset-second-factors` → 204. For back-office services (a service account's
//! token or a PAT carrying `admin:users`). Removes the TOTP authenticator, the backup codes and every passkey of
//! an account of the caller's tenant ranked below the caller (for a user who lost their devices), signs out every
//! session, records the admin event, and emails an individual a notice. Another tenant's id is 404.
//!
//! DynamoDB round trips: 4 with a JWT (the authenticating BatchGetItem, the target, its passkeys, one
//! transaction), 5 with a PAT. One SQS call.

use keygate::auth::{self, Access};
use keygate::{admin, http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, reset(state, &req).await)
}

async fn reset(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let caller = auth::authenticate(state, req, now, Access::Scope(admin::ADMIN_SCOPE)).await?;
    admin::require_service(&caller)?;
    admin::reset_second_factors(state, &caller, http::path_param(req, "userId"), now).await?;
    Ok(http::empty(204))
}
