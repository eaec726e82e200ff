//! Rate-limit counters (`RATE#<rule>#<subject>` / `<window start>`): one atomic write per checked request.

use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use super::{built, decode, expiry_bucket, is_condition_failure, key, n, Item, Store};
use crate::clock::UnixTime;
use crate::Error;

fn counter_key(rule: &str, subject: &str, window_start: UnixTime) -> Item {
    key(&format!("RATE#{rule}#{subject}"), &window_start.to_string())
}

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
        .set_key(Some(counter_key(rule, subject, window_start)))
        .update_expression("ADD hits :one SET expires_at = :expires, expiry_bucket = :bucket")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":expires", n(window_end))
        .expression_attribute_values(":bucket", n(expiry_bucket(window_end)))
        .return_values(ReturnValue::UpdatedNew)
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

/// A budget of `limit` per window, at most one per `min_interval` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// Stable rule name, part of the key.
    pub rule: &'a str,
    /// Whose budget (an address, an address and purpose).
    pub subject: &'a str,
    /// Start of the window.
    pub window_start: UnixTime,
    /// End of the window; the counter expires then.
    pub window_end: UnixTime,
    /// Spends allowed per window.
    pub limit: u32,
    /// Seconds that must pass between two spends (0 for none).
    pub min_interval: i64,
}

#[derive(serde::Deserialize)]
struct Counter {
    #[serde(default)]
    hits: i64,
    #[serde(default)]
    last_at: UnixTime,
}

/// Spends one unit of a budget with a conditional write, so a refused request spends nothing and concurrent
/// requests cannot overspend. `Ok(None)` when spent, `Ok(Some(seconds))` when refused, with the wait.
/// One round trip.
pub async fn spend(store: &Store, budget: &Budget<'_>, now: UnixTime) -> Result<Option<i64>, Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(counter_key(budget.rule, budget.subject, budget.window_start)))
        .update_expression("ADD hits :one SET last_at = :now, expires_at = :expires, expiry_bucket = :bucket")
        .condition_expression(
            "(attribute_not_exists(hits) OR hits < :limit) AND (attribute_not_exists(last_at) OR last_at <= :since)",
        )
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":limit", n(i64::from(budget.limit)))
        .expression_attribute_values(":since", n(now - budget.min_interval))
        .expression_attribute_values(":expires", n(budget.window_end))
        .expression_attribute_values(":bucket", n(expiry_bucket(budget.window_end)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(None),
        Err(err) if is_condition_failure(&err) => {
            let old = match err.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                    e.item.map(decode::<Counter>).transpose()?
                }
                _ => None,
            };
            let to_window_end = budget.window_end - now;
            let wait = match old {
                Some(c) if c.hits < i64::from(budget.limit) => {
                    (c.last_at + budget.min_interval - now).min(to_window_end)
                }
                _ => to_window_end,
            };
            Ok(Some(wait.max(1)))
        }
        Err(err) => Err(Error::dependency("dynamodb UpdateItem (rate limit)", err)),
    }
}

/// Gives back one unit of a budget spent earlier, on its own. One round trip.
pub async fn refund(store: &Store, budget: &Budget<'_>) -> Result<(), Error> {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(counter_key(budget.rule, budget.subject, budget.window_start)))
        .update_expression(REFUND)
        .expression_attribute_values(":minus_one", n(-1))
        .expression_attribute_values(":expires", n(budget.window_end))
        .expression_attribute_values(":bucket", n(expiry_bucket(budget.window_end)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::dependency("dynamodb UpdateItem (rate limit)", e))
}

const REFUND: &str = "ADD hits :minus_one SET expires_at = :expires, expiry_bucket = :bucket";

/// A transaction item that gives back one unit of a budget spent earlier (a right code is not a wrong guess).
/// Unconditional, so that a counter removed meanwhile cannot fail the transaction that carries it.
pub(crate) fn refund_item(store: &Store, budget: &Budget<'_>) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(counter_key(budget.rule, budget.subject, budget.window_start)))
        .update_expression(REFUND)
        .expression_attribute_values(":minus_one", n(-1))
        .expression_attribute_values(":expires", n(budget.window_end))
        .expression_attribute_values(":bucket", n(expiry_bucket(budget.window_end)));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}
