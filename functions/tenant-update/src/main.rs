//! Lambda bootstrap for `tenant-update`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(tenant_update::handle).await
}
