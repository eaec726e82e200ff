//! Lambda bootstrap for `auth-admin-set-password`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_admin_set_password::handle).await
}
