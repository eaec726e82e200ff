//! Lambda bootstrap for `audit-events-list`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(audit_events_list::handle).await
}
