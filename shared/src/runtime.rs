//! The Lambda bootstrap every function's `main.rs` calls: logging, state, and the runtime loop.

use std::future::Future;

use lambda_http::{service_fn, Body, Request, Response};
use tracing_subscriber::filter::{LevelFilter, Targets};

use crate::{telemetry, State};

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (default `info`; see [`log_filter`]).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let setting = std::env::var("RUST_LOG").ok();
    let filter = log_filter(setting.as_deref());
    let unreadable = filter.is_none();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish()
        .with(filter.unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO)))
        .init();
    if unreadable {
        tracing::warn!("RUST_LOG is not a level or a list of target=level directives; logging at info");
    }
}

/// The log filter a `RUST_LOG` value asks for: unset or blank is `info`; otherwise a level (`warn`) or a comma-separated
/// list of `target=level` directives with an optional default level (`info,keygate=debug`). `None` when the value
/// is neither, e.g. the span and field filters (`[span{field}]`) of `EnvFilter`, which keygate does not use: their
/// regex engine cost every function a few hundred kilobytes.
pub fn log_filter(setting: Option<&str>) -> Option<Targets> {
    match setting.map(str::trim) {
        None | Some("") => Some(Targets::new().with_default(LevelFilter::INFO)),
        Some(directives) => directives.parse().ok(),
    }
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn an_unset_or_blank_setting_logs_at_info() {
        for setting in [None, Some(""), Some("  ")] {
            let filter = log_filter(setting).unwrap();
            assert!(filter.would_enable("keygate::account", &Level::INFO), "{setting:?}");
            assert!(!filter.would_enable("keygate::account", &Level::DEBUG), "{setting:?}");
        }
    }

    #[test]
    fn a_level_or_target_directives_set_the_filter() {
        let warn = log_filter(Some("warn")).unwrap();
        assert!(warn.would_enable("aws_smithy_runtime", &Level::WARN));
        assert!(!warn.would_enable("keygate", &Level::INFO));
        let mixed = log_filter(Some("info,keygate=debug,aws_smithy_runtime=error")).unwrap();
        assert!(mixed.would_enable("keygate::store", &Level::DEBUG));
        assert!(!mixed.would_enable("aws_smithy_runtime::client", &Level::WARN));
        assert!(mixed.would_enable("hyper", &Level::INFO));
        assert!(!mixed.would_enable("hyper", &Level::DEBUG));
        let off = log_filter(Some("off")).unwrap();
        assert!(!off.would_enable("keygate", &Level::ERROR));
        // A bare target, as in EnvFilter: that target at every level, nothing else.
        let target = log_filter(Some("keygate")).unwrap();
        assert!(target.would_enable("keygate::store", &Level::TRACE));
        assert!(!target.would_enable("hyper", &Level::ERROR));
    }

    #[test]
    fn an_unreadable_setting_is_refused() {
        for setting in ["keygate=shouty", "keygate[span{id=1}]=debug", "info,a=b=c"] {
            assert!(log_filter(Some(setting)).is_none(), "{setting}");
        }
    }
}
