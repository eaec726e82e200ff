//! Lambda bootstrap for `well-known-openid-configuration`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(well_known_openid_configuration::handle).await
}
