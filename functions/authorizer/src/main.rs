//! Lambda bootstrap for `authorizer`: build the state once, then decide.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    keygate::runtime::init_tracing();
    let state: &'static keygate::State = Box::leak(Box::new(keygate::State::from_env().await?));
    keygate::telemetry::install(&state.config.metrics_namespace);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        keygate::telemetry::flushed(async move { Ok::<_, Error>(authorizer::handle(state, event.payload).await) })
    }))
    .await
}
