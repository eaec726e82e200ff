//! Lambda bootstrap for `auth-users-delete`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_users_delete::handle).await
}
