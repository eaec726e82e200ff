//! Lambda bootstrap for `api-fallback`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(api_fallback::handle).await
}
