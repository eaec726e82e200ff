//! Lambda bootstrap for `example-whoami`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(example_whoami::handle).await
}
