//! `GET /v1/auth/check-registration?email=` → `{"registered": bool}`. It reveals whether an address has an
//! account, so it has the strictest rate limit, and `KEYGATE_CHECK_REGISTRATION=false` turns it off (404).
//!
//! DynamoDB round trips: 2 for an unknown address (rate-limit counter, email marker), 3 for a known one.

use keygate::email::Email;
use keygate::{account, http, rate_limit, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, check(state, &req).await)
}

async fn check(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    if !state.config.check_registration_enabled {
        return Err(Error::NotFound);
    }
    let raw = http::query_param(req, "email")
        .ok_or_else(|| Error::InvalidRequest("The request is invalid: missing query parameter `email`.".into()))?;
    let email = Email::parse(raw)?;
    let rule = state.config.rate_limits.lookup_rule();
    rate_limit::check_client_ip(&state.store, &rule, &state.client_info(req), now).await?;
    let registered = account::is_registered(state, &email).await?;
    Ok(http::json(200, &serde_json::json!({ "registered": registered })))
}
