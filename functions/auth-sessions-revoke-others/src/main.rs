//! Lambda bootstrap for `auth-sessions-revoke-others`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_sessions_revoke_others::handle).await
}
