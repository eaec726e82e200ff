//! The route table: method, path template, and the function crate that serves it. template.yaml and
//! openapi.yaml must list the same routes (a test checks).

use keygate::State;
use lambda_http::{Body, Request, Response};

macro_rules! routes {
    ($( $method:literal $path:literal => $function:ident ),* $(,)?) => {
        /// Every route: (method, path template, function crate).
        pub const ROUTES: &[(&str, &str, &str)] = &[$(($method, $path, stringify!($function))),*];

        /// Calls the `handle` of the function serving route number `index` of [`ROUTES`].
        pub async fn dispatch(index: usize, state: &State, req: Request) -> Option<Response<Body>> {
            let mut candidate = 0usize;
            $(
                if index == candidate {
                    return Some($function::handle(state, req).await);
                }
                candidate += 1;
            )*
            let _ = candidate;
            None
        }
    };
}

routes! {
    "POST" "/v1/auth/register" => auth_register,
    "POST" "/v1/auth/register/verify" => auth_register_verify,
    "GET" "/v1/auth/check-registration" => auth_check_registration,
    "POST" "/v1/auth/login" => auth_login,
    "POST" "/v1/auth/refresh" => auth_refresh,
    "POST" "/v1/auth/logout" => auth_logout,
    "GET" "/v1/auth/me" => auth_me,
    "POST" "/v1/auth/change-password" => auth_change_password,
    "POST" "/v1/auth/password-reset-request" => auth_password_reset_request,
    "POST" "/v1/auth/password-reset" => auth_password_reset,
    "POST" "/v1/auth/otp/send" => auth_otp_send,
    "POST" "/v1/auth/otp/login" => auth_otp_login,
    "POST" "/v1/auth/magic-link/send" => auth_magic_link_send,
    "POST" "/v1/auth/magic-link/login" => auth_magic_link_login,
    "GET" "/v1/auth/sessions" => auth_sessions_list,
    "DELETE" "/v1/auth/sessions/{session_id}" => auth_sessions_revoke,
    "DELETE" "/v1/auth/sessions" => auth_sessions_revoke_others,
    "POST" "/v1/api-tokens" => api_tokens_create,
    "GET" "/v1/api-tokens" => api_tokens_list,
    "GET" "/v1/api-tokens/{id}" => api_tokens_get,
    "POST" "/v1/api-tokens/{id}/rotate" => api_tokens_rotate,
    "DELETE" "/v1/api-tokens/{id}" => api_tokens_delete,
    "POST" "/v1/auth/login/root" => auth_login_root,
    "POST" "/v1/auth/login/service" => auth_login_service,
    "POST" "/v1/accounts/service" => accounts_create_service,
    "POST" "/v1/auth/session/database" => auth_session_database,
    "GET" "/v1/tenant" => tenant_get,
    "PATCH" "/v1/tenant" => tenant_update,
    "POST" "/v1/tenant/transfer-root" => tenant_transfer_root,
    "POST" "/v1/databases" => databases_create,
    "GET" "/v1/databases" => databases_list,
    "GET" "/v1/databases/{id}" => databases_get,
    "DELETE" "/v1/databases/{id}" => databases_delete,
    "GET" "/v1/accounts" => accounts_list,
    "POST" "/v1/accounts/individual" => accounts_create_individual,
    "GET" "/v1/accounts/{id}" => accounts_get,
    "PATCH" "/v1/accounts/{id}" => accounts_update,
    "DELETE" "/v1/accounts/{id}" => accounts_delete,
    "POST" "/v1/auth/invitations/accept" => auth_invitations_accept,
    "GET" "/v1/auth/2fa/status" => auth_2fa_status,
    "POST" "/v1/auth/2fa/setup" => auth_2fa_setup,
    "POST" "/v1/auth/2fa/enable" => auth_2fa_enable,
    "POST" "/v1/auth/2fa/disable" => auth_2fa_disable,
    "POST" "/v1/auth/2fa/verify" => auth_2fa_verify,
    "POST" "/v1/auth/2fa/backup-codes/regenerate" => auth_2fa_backup_codes_regenerate,
    "GET" "/v1/auth/passkey/list" => auth_passkey_list,
    "GET" "/v1/auth/events" => auth_events_list,
    "GET" "/v1/audit-events" => audit_events_list,
    "POST" "/v1/auth/passkey/register/options" => auth_passkey_register_options,
    "POST" "/v1/auth/passkey/register/verify" => auth_passkey_register_verify,
    "POST" "/v1/auth/passkey/login/options" => auth_passkey_login_options,
    "POST" "/v1/auth/passkey/login/verify" => auth_passkey_login_verify,
    "PATCH" "/v1/auth/passkey/{id}" => auth_passkey_update,
    "DELETE" "/v1/auth/passkey/{id}" => auth_passkey_delete,
    "POST" "/v1/auth/admin/set-password" => auth_admin_set_password,
    "DELETE" "/v1/auth/users/{userId}" => auth_users_delete,
    "POST" "/v1/auth/admin/users/{userId}/reset-second-factors" => auth_admin_reset_second_factors,
    "DELETE" "/v1/auth/me" => auth_me_delete,
    "POST" "/v1/accounts/{id}/api-tokens" => accounts_api_tokens_create,
    "GET" "/v1/accounts/{id}/api-tokens" => accounts_api_tokens_list,
    "DELETE" "/v1/accounts/{id}/api-tokens/{tokenId}" => accounts_api_tokens_delete,
    "POST" "/v1/oauth/token" => oauth_token,
    "POST" "/v1/scoped-tokens" => scoped_tokens_create,
    "GET" "/v1/scoped-tokens" => scoped_tokens_list,
    "DELETE" "/v1/scoped-tokens/{id}" => scoped_tokens_delete,
    "POST" "/v1/auth/google" => auth_google,
    "GET" "/v1/auth/sso/start" => auth_sso_start,
    "POST" "/v1/auth/sso" => auth_sso,
    "GET" "/v1/auth/identities" => auth_identities_list,
    "GET" "/v1/auth/identities/link/start" => auth_identities_link_start,
    "POST" "/v1/auth/identities/link" => auth_identities_link,
    "DELETE" "/v1/auth/identities/{id}" => auth_identities_delete,
    "GET" "/v1/example/whoami" => example_whoami,
    "GET" "/.well-known/jwks.json" => well_known_jwks,
    "GET" "/.well-known/openid-configuration" => well_known_openid_configuration,
}

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
