//! Which function crate serves each route of [`keygate::routes::ROUTES`]: the local server calls the same
//! `handle` that each Lambda's bootstrap does.

use keygate::State;
use lambda_http::{Body, Request, Response};

macro_rules! functions {
    ($( $function:ident ),* $(,)?) => {
        /// The function crates, in the order of [`keygate::routes::ROUTES`].
        pub const FUNCTIONS: &[&str] = &[$(stringify!($function)),*];

        /// Calls the `handle` of the function serving route number `index` of [`keygate::routes::ROUTES`].
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

functions! {
    auth_register,
    auth_register_verify,
    auth_check_registration,
    auth_login,
    auth_refresh,
    auth_logout,
    auth_me,
    auth_change_password,
    auth_password_reset_request,
    auth_password_reset,
    auth_otp_send,
    auth_otp_login,
    auth_magic_link_send,
    auth_magic_link_login,
    auth_sessions_list,
    auth_sessions_revoke,
    auth_sessions_revoke_others,
    api_tokens_create,
    api_tokens_list,
    api_tokens_get,
    api_tokens_rotate,
    api_tokens_delete,
    auth_login_root,
    auth_login_service,
    accounts_create_service,
    auth_session_database,
    tenant_get,
    tenant_update,
    tenant_transfer_root,
    databases_create,
    databases_list,
    databases_get,
    databases_delete,
    accounts_list,
    accounts_create_individual,
    accounts_get,
    accounts_update,
    accounts_delete,
    auth_invitations_accept,
    auth_2fa_status,
    auth_2fa_setup,
    auth_2fa_enable,
    auth_2fa_disable,
    auth_2fa_verify,
    auth_2fa_backup_codes_regenerate,
    auth_passkey_list,
    auth_events_list,
    audit_events_list,
    auth_passkey_register_options,
    auth_passkey_register_verify,
    auth_passkey_login_options,
    auth_passkey_login_verify,
    auth_passkey_update,
    auth_passkey_delete,
    auth_admin_set_password,
    auth_users_delete,
    auth_admin_reset_second_factors,
    auth_me_delete,
    accounts_api_tokens_create,
    accounts_api_tokens_list,
    accounts_api_tokens_delete,
    oauth_token,
    scoped_tokens_create,
    scoped_tokens_list,
    scoped_tokens_delete,
    auth_google,
    auth_sso_start,
    auth_sso,
    auth_identities_list,
    auth_identities_link_start,
    auth_identities_link,
    auth_identities_delete,
    example_whoami,
    well_known_jwks,
    well_known_openid_configuration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_dispatched_to_its_own_function() {
        let routes: Vec<String> = keygate::routes::ROUTES.iter().map(|r| r.2.replace('-', "_")).collect();
        assert_eq!(routes, FUNCTIONS);
    }
}
