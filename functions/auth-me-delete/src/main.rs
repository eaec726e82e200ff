//! Lambda bootstrap for `auth-me-delete`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_me_delete::handle).await
}
