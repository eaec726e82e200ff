//! Lambda bootstrap for `auth-magic-link-send`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_magic_link_send::handle).await
}
