//! Counts the calls an SDK client makes, by operation: an SDK interceptor, so the count covers every call the code
//! makes, whichever path makes it. Used by the tests and `make bench` to check round trips. Works for any client
//! of an AWS JSON protocol: DynamoDB and SQS (aws-sdk-sqs speaks JSON 1.0) both name the operation in
//! `X-Amz-Target`. The tests also use it to record which DynamoDB actions each function really needs, and check
//! them against template.yaml's IAM policies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

tokio::task_local! {
    /// The function crate serving the current request (the local server sets it), so that a recording counter can
    /// say which function made each call.
    pub static FUNCTION: &'static str;
}

/// Calls per operation name (`GetItem`, `UpdateItem`, ...).
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
    actions: Option<Arc<Mutex<std::fs::File>>>,
}

impl CallCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter that also appends `<function> <service>:<Action>` (`dynamodb:`, `sqs:`) to `path` for every call made inside a
    /// [`FUNCTION`] scope, naming each item kind of a transaction (`PutItem`, `UpdateItem`, ...) since IAM
    /// authorises those and not the transaction.
    pub fn recording_actions_to(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            calls: Arc::default(),
            actions: Some(Arc::new(Mutex::new(file))),
        })
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The total so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Forgets the counts.
    pub fn reset(&self) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.clear();
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "keygate::CallCounter"
    }

    // Counted as each request goes on the wire, so retries count: they are round trips too.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `X-Amz-Target: DynamoDB_20120810.GetItem`, `X-Amz-Target: AmazonSQS.SendMessage`.
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        if let (Some(log), Ok(function)) = (&self.actions, FUNCTION.try_with(|f| *f)) {
            let service = if target.starts_with("AmazonSQS") {
                "sqs"
            } else {
                "dynamodb"
            };
            let actions = iam_actions(&operation, context.request().body().bytes());
            let lines: String = actions
                .iter()
                .map(|action| format!("{function} {service}:{action}\n"))
                .collect();
            if let Ok(mut file) = log.lock() {
                use std::io::Write as _;
                // One write of an O_APPEND file: lines from several counters (and tests) never interleave.
                file.write_all(lines.as_bytes())?;
            }
        }
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(operation).or_default() += 1;
        }
        Ok(())
    }
}

/// The IAM actions one DynamoDB call needs: the operation itself, or for a transaction each of its item kinds.
fn iam_actions(operation: &str, body: Option<&[u8]>) -> Vec<String> {
    if operation != "TransactWriteItems" {
        return vec![operation.to_owned()];
    }
    let items = body
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v.get("TransactItems").and_then(|i| i.as_array()).cloned())
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item.as_object()?.keys().next().cloned())
        .map(|kind| format!("{kind}Item"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_need_the_actions_of_their_items() {
        let body = br#"{"TransactItems":[{"Put":{}},{"Update":{}},{"Delete":{}},{"ConditionCheck":{}}]}"#;
        assert_eq!(
            iam_actions("TransactWriteItems", Some(body)),
            ["PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]
        );
        assert_eq!(iam_actions("GetItem", None), ["GetItem"]);
    }
}
