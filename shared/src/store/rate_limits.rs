//! Rate-limit counters (`RATE#<rule>#<subject>` / `<window start>`): one atomic ADD per checked request.

use super::{key, n, Store};
use crate::clock::UnixTime;
use crate::Error;

/// Adds one hit to the counter of `(rule, subject, window_start)` and returns the new count. The item expires
/// with its window. One round trip.
pub async fn hit(
    store: &Store,
    rule: &str,
    subject: &str,
    window_start: UnixTime,
    window_end: UnixTime,
) -> Result<i64, Error> {
    let output = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&format!("RATE#{rule}#{subject}"), &window_start.to_string())))
        .update_expression("ADD hits :one SET expires_at = :expires")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":expires", n(window_end))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb UpdateItem (rate limit)", e))?;
    output
        .attributes
        .and_then(|a| a.get("hits").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()))
        .ok_or_else(|| {
            Error::dependency(
                "dynamodb UpdateItem (rate limit)",
                std::io::Error::other("no count returned"),
            )
        })
}
