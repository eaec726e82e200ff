//! `POST /v1/auth/logout`: `{refresh_token}` in the body, or the bearer's session → 204. Idempotent.
//!
//! DynamoDB round trips: 2 (rate-limit counter, conditional revoke); a refresh token rotated out before the last
//! rotation adds two (the session, its history item) and the revoke. The bearer form verifies the JWT offline and
//! writes the revocation and its `session_revoked` event in one transaction; the refresh-token form learns the owner
//! from the revocation's answer, so it writes the event after it (+1) when it ended a live session.

use keygate::{auth, http, rate_limit, session, Error, State};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct LogoutRequest {
    refresh_token: Option<String>,
}

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, logout(state, &req).await)
}

async fn logout(state: &State, req: &Request) -> Result<Response<Body>, Error> {
    let now = state.clock.now();
    let refresh_token = http::optional_json_body::<LogoutRequest>(req)?.refresh_token;
    let rule = state.config.rate_limits.refresh_rule("logout");
    rate_limit::check_client_ip(&state.store, &rule, &state.client_info(req), now).await?;
    match refresh_token {
        Some(token) => session::logout_with_refresh_token(state, &token, now).await?,
        None => {
            let claims = auth::bearer_claims(state, req, now)
                .await
                .map_err(|_| Error::InvalidToken("Provide a refresh token in the body or a valid bearer token."))?;
            session::logout_session(state, &claims, now).await?;
        }
    }
    Ok(http::empty(204))
}
