//! The scheduled cleanup (an EventBridge schedule, hourly by default): one pass of [`keygate::cleanup::run`], which
//! stops before the invocation's deadline and leaves a checkpoint for the next run. The report is logged as one
//! JSON line (the counts per kind); a failed pass is an invocation error, which the schedule's alarm counts.
//!
//! DynamoDB round trips: the checkpoint; one query per expiry bucket and page; one conditional delete per expired
//! item; one checkpoint write per finished past bucket.

use std::time::{Duration, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    keygate::runtime::init_tracing();
    let config = keygate::Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let state = keygate::State::new(config, &aws);
    let state = &state;
    keygate::telemetry::install(&state.config.metrics_namespace);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        keygate::telemetry::flushed(pass(state, event))
    }))
    .await
}

/// One cleanup pass, within the invocation's deadline.
async fn pass(state: &keygate::State, event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    // Whole seconds are enough: the pass stops ten seconds before its deadline.
    let deadline = event
        .context
        .deadline()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    let time_left = move || Duration::from_secs(u64::try_from(deadline - state.clock.now()).unwrap_or(0));
    let report = keygate::cleanup::run(state, state.clock.now(), time_left)
        .await
        .map_err(|e| format!("cleanup failed: {e}"))?;
    tracing::info!(
        deleted = report.total(),
        skipped = report.skipped,
        buckets = report.buckets,
        warned = report.warned,
        finished = report.finished,
        by_kind = %serde_json::to_string(&report.deleted).unwrap_or_default(),
        "cleanup pass"
    );
    Ok(serde_json::to_value(&report)?)
}
