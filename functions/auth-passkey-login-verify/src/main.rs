//! Lambda bootstrap for `auth-passkey-login-verify`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_passkey_login_verify::handle).await
}
