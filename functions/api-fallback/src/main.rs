//! Lambda bootstrap for `api-fallback`: it answers from the route table alone, so it builds no state (no
//! configuration read, no AWS client) at cold start.

use lambda_http::{service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    keygate::runtime::init_tracing();
    lambda_http::run(service_fn(|req: Request| async move {
        Ok::<_, Error>(api_fallback::handle(&req))
    }))
    .await
}
