//! Lambda bootstrap for `auth-2fa-disable`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_2fa_disable::handle).await
}
