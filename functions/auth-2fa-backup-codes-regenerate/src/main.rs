//! Lambda bootstrap for `auth-2fa-backup-codes-regenerate`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_2fa_backup_codes_regenerate::handle).await
}
