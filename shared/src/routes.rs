//! The route table: every method and path template of the API, and the function that serves it. template.yaml,
//! openapi.yaml and the local server list the same routes (tests/e2e/routes.rs checks); the `api-fallback`
//! function answers what matches none of them, on API Gateway's `$default` route as in the local server.

/// Every route: (method, path template, function crate).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/v1/auth/register", "auth-register"),
    ("POST", "/v1/auth/register/verify", "auth-register-verify"),
    ("GET", "/v1/auth/check-registration", "auth-check-registration"),
    ("POST", "/v1/auth/login", "auth-login"),
    ("POST", "/v1/auth/refresh", "auth-refresh"),
    ("POST", "/v1/auth/logout", "auth-logout"),
    ("GET", "/v1/auth/me", "auth-me"),
    ("POST", "/v1/auth/change-password", "auth-change-password"),
    ("POST", "/v1/auth/password-reset-request", "auth-password-reset-request"),
    ("POST", "/v1/auth/password-reset", "auth-password-reset"),
    ("POST", "/v1/auth/otp/send", "auth-otp-send"),
    ("POST", "/v1/auth/otp/login", "auth-otp-login"),
    ("POST", "/v1/auth/magic-link/send", "auth-magic-link-send"),
    ("POST", "/v1/auth/magic-link/login", "auth-magic-link-login"),
    ("GET", "/v1/auth/sessions", "auth-sessions-list"),
    ("DELETE", "/v1/auth/sessions/{session_id}", "auth-sessions-revoke"),
    ("DELETE", "/v1/auth/sessions", "auth-sessions-revoke-others"),
    ("POST", "/v1/api-tokens", "api-tokens-create"),
    ("GET", "/v1/api-tokens", "api-tokens-list"),
    ("GET", "/v1/api-tokens/{id}", "api-tokens-get"),
    ("POST", "/v1/api-tokens/{id}/rotate", "api-tokens-rotate"),
    ("DELETE", "/v1/api-tokens/{id}", "api-tokens-delete"),
    ("POST", "/v1/auth/login/root", "auth-login-root"),
    ("POST", "/v1/auth/login/service", "auth-login-service"),
    ("POST", "/v1/accounts/service", "accounts-create-service"),
    ("POST", "/v1/auth/session/database", "auth-session-database"),
    ("GET", "/v1/tenant", "tenant-get"),
    ("PATCH", "/v1/tenant", "tenant-update"),
    ("POST", "/v1/tenant/transfer-root", "tenant-transfer-root"),
    ("POST", "/v1/databases", "databases-create"),
    ("GET", "/v1/databases", "databases-list"),
    ("GET", "/v1/databases/{id}", "databases-get"),
    ("DELETE", "/v1/databases/{id}", "databases-delete"),
    ("GET", "/v1/accounts", "accounts-list"),
    ("POST", "/v1/accounts/individual", "accounts-create-individual"),
    ("GET", "/v1/accounts/{id}", "accounts-get"),
    ("PATCH", "/v1/accounts/{id}", "accounts-update"),
    ("DELETE", "/v1/accounts/{id}", "accounts-delete"),
    ("POST", "/v1/auth/invitations/accept", "auth-invitations-accept"),
    ("GET", "/v1/auth/2fa/status", "auth-2fa-status"),
    ("POST", "/v1/auth/2fa/setup", "auth-2fa-setup"),
    ("POST", "/v1/auth/2fa/enable", "auth-2fa-enable"),
    ("POST", "/v1/auth/2fa/disable", "auth-2fa-disable"),
    ("POST", "/v1/auth/2fa/verify", "auth-2fa-verify"),
    (
        "POST",
        "/v1/auth/2fa/backup-codes/regenerate",
        "auth-2fa-backup-codes-regenerate",
    ),
    ("GET", "/v1/auth/passkey/list", "auth-passkey-list"),
    ("GET", "/v1/auth/events", "auth-events-list"),
    ("GET", "/v1/audit-events", "audit-events-list"),
    (
        "POST",
        "/v1/auth/passkey/register/options",
        "auth-passkey-register-options",
    ),
    (
        "POST",
        "/v1/auth/passkey/register/verify",
        "auth-passkey-register-verify",
    ),
    ("POST", "/v1/auth/passkey/login/options", "auth-passkey-login-options"),
    ("POST", "/v1/auth/passkey/login/verify", "auth-passkey-login-verify"),
    ("PATCH", "/v1/auth/passkey/{id}", "auth-passkey-update"),
    ("DELETE", "/v1/auth/passkey/{id}", "auth-passkey-delete"),
    ("POST", "/v1/auth/admin/set-password", "auth-admin-set-password"),
    ("DELETE", "/v1/auth/users/{userId}", "auth-users-delete"),
    (
        "POST",
        "/v1/auth/admin/users/{userId}/reset-second-factors",
        "auth-admin-reset-second-factors",
    ),
    ("DELETE", "/v1/auth/me", "auth-me-delete"),
    ("POST", "/v1/accounts/{id}/api-tokens", "accounts-api-tokens-create"),
    ("GET", "/v1/accounts/{id}/api-tokens", "accounts-api-tokens-list"),
    (
        "DELETE",
        "/v1/accounts/{id}/api-tokens/{tokenId}",
        "accounts-api-tokens-delete",
    ),
    ("POST", "/v1/oauth/token", "oauth-token"),
    ("POST", "/v1/scoped-tokens", "scoped-tokens-create"),
    ("GET", "/v1/scoped-tokens", "scoped-tokens-list"),
    ("DELETE", "/v1/scoped-tokens/{id}", "scoped-tokens-delete"),
    ("POST", "/v1/auth/google", "auth-google"),
    ("GET", "/v1/auth/sso/start", "auth-sso-start"),
    ("POST", "/v1/auth/sso", "auth-sso"),
    ("GET", "/v1/auth/identities", "auth-identities-list"),
    ("GET", "/v1/auth/identities/link/start", "auth-identities-link-start"),
    ("POST", "/v1/auth/identities/link", "auth-identities-link"),
    ("DELETE", "/v1/auth/identities/{id}", "auth-identities-delete"),
    ("GET", "/v1/example/whoami", "example-whoami"),
    ("GET", "/.well-known/jwks.json", "well-known-jwks"),
    (
        "GET",
        "/.well-known/openid-configuration",
        "well-known-openid-configuration",
    ),
];

/// Routes that API Gateway guards with the keygate Lambda authorizer (template.yaml: `KeygateAuthorizer`).
pub const AUTHORIZED_ROUTES: &[&str] = &["/v1/example/whoami"];

/// The outcome of matching a request against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// Route number, its template, and the path parameters.
    Found(usize, Vec<(String, String)>),
    /// The path exists with other methods: these, in table order, for the `Allow` header (RFC 9110 §15.5.6).
    MethodNotAllowed(Vec<&'static str>),
    /// No such path.
    NotFound,
}

/// Matches a method and path against [`ROUTES`]; `{name}` segments capture a path parameter.
pub fn find(method: &str, path: &str) -> Match {
    let mut allowed = Vec::new();
    for (index, (route_method, template, _)) in ROUTES.iter().enumerate() {
        if let Some(params) = match_template(template, path) {
            if *route_method == method {
                return Match::Found(index, params);
            }
            // Two templates can match one path (`/v1/accounts/service`, `/v1/accounts/{id}`): Allow names both.
            if !allowed.contains(route_method) {
                allowed.push(*route_method);
            }
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::MethodNotAllowed(allowed)
    }
}

fn match_template(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut template_parts = template.split('/');
    let mut path_parts = path.split('/');
    loop {
        match (template_parts.next(), path_parts.next()) {
            (None, None) => return Some(params),
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') && !p.is_empty() => {
                params.push((t.trim_matches(|c| c == '{' || c == '}').to_owned(), p.to_owned()));
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes_and_methods() {
        assert!(matches!(find("POST", "/v1/auth/login"), Match::Found(_, ref p) if p.is_empty()));
        assert_eq!(find("GET", "/v1/auth/login"), Match::MethodNotAllowed(vec!["POST"]));
        assert_eq!(
            find("PUT", "/v1/auth/me"),
            Match::MethodNotAllowed(vec!["GET", "DELETE"])
        );
        assert_eq!(
            find("PUT", "/v1/accounts/service"),
            Match::MethodNotAllowed(vec!["POST", "GET", "PATCH", "DELETE"])
        );
        assert!(matches!(find("GET", "/v1/accounts/service"), Match::Found(_, ref p) if p[0].1 == "service"));
        assert_eq!(find("GET", "/v1/auth/nope"), Match::NotFound);
        assert_eq!(find("POST", "/v1/auth/login/"), Match::NotFound);
    }

    #[test]
    fn captures_path_parameters() {
        assert_eq!(
            match_template("/v1/x/{id}", "/v1/x/abc"),
            Some(vec![("id".into(), "abc".into())])
        );
        assert_eq!(match_template("/v1/x/{id}", "/v1/x/"), None);
        assert_eq!(match_template("/v1/x/{id}", "/v1/x/a/b"), None);
    }
}
