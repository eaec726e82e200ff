//! Lambda bootstrap for `tenant-get`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(tenant_get::handle).await
}
