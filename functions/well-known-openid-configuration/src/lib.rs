//! `GET /.well-known/openid-configuration`: the issuer, its JWKS and the endpoints that exist, with the OAuth token
//! endpoint's grants and client authentication methods (RFC 8414).
//!
//! DynamoDB round trips: 0.

use keygate::{http, oauth, State};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// Serves one request.
pub async fn handle(state: &State, _req: Request) -> Response<Body> {
    let issuer = &state.config.issuer;
    let document = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "userinfo_endpoint": format!("{issuer}/v1/auth/me"),
        "revocation_endpoint": format!("{issuer}/v1/auth/logout"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint": format!("{issuer}/v1/oauth/token"),
        "grant_types_supported": [oauth::CLIENT_CREDENTIALS, oauth::TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "scope", "amr", "client_id", "act"],
        "scopes_supported": keygate::scopes::vocabulary(&state.config).collect::<Vec<_>>(),
        "keygate_endpoints": {
            "register": format!("{issuer}/v1/auth/register"),
            "register_verify": format!("{issuer}/v1/auth/register/verify"),
            "check_registration": format!("{issuer}/v1/auth/check-registration"),
            "login": format!("{issuer}/v1/auth/login"),
            "refresh": format!("{issuer}/v1/auth/refresh"),
            "logout": format!("{issuer}/v1/auth/logout"),
            "me": format!("{issuer}/v1/auth/me"),
            "change_password": format!("{issuer}/v1/auth/change-password"),
            "password_reset_request": format!("{issuer}/v1/auth/password-reset-request"),
            "password_reset": format!("{issuer}/v1/auth/password-reset"),
        },
    });
    http::public_json(&document, 3600)
}
