//! Lambda bootstrap for `auth-admin-reset-second-factors`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_admin_reset_second_factors::handle).await
}
