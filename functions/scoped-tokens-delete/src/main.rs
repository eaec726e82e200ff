//! Lambda bootstrap for `scoped-tokens-delete`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(scoped_tokens_delete::handle).await
}
