//! Lambda bootstrap for `auth-otp-login`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_otp_login::handle).await
}
