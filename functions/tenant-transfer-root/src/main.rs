//! Lambda bootstrap for `tenant-transfer-root`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(tenant_transfer_root::handle).await
}
