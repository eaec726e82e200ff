//! Lambda bootstrap for `auth-events-list`: build the state once, then serve.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    keygate::runtime::run_http(auth_events_list::handle).await
}
