//! The Lambda bootstrap every function's `main.rs` calls: logging, state, and the runtime loop.

use std::future::Future;

use lambda_http::{service_fn, Body, Request, Response};

use crate::{telemetry, State};

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

/// Builds the state once and serves `handler` until the runtime stops, writing the invocation's metrics to stdout
/// after each response ([`crate::telemetry`]). The state lives as long as the process, so it is leaked on purpose
/// and handed out as `&'static`.
pub async fn run_http<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static State, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    init_tracing();
    let state: &'static State = Box::leak(Box::new(State::from_env().await?));
    telemetry::install(&state.config.metrics_namespace);
    lambda_http::run(service_fn(|req: Request| {
        let client = crate::http::client_info(&req, state.config.trusted_proxy.as_ref());
        let response = crate::http::serving(client, handler(state, req));
        async move { Ok::<_, lambda_http::Error>(telemetry::flushed(response).await) }
    }))
    .await
}
