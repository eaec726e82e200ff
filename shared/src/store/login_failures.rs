//! Consecutive failed logins per account (`LOGINFAIL#<email>` / `LOGINFAIL`), for the login backoff. Kept for
//! every address tried, with or without an account, so the backoff itself reveals nothing.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, conditional, decode, key, n, users, Store};
use crate::clock::UnixTime;
use crate::email::Email;
use crate::Error;

/// A day without failures forgets them.
pub const FORGET_AFTER_SECONDS: i64 = 86_400;

/// The failure record of one address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginFailures {
    /// Consecutive failures.
    #[serde(default)]
    pub failures: i64,
    /// When the last failure (or the last admitted attempt in backoff) happened.
    #[serde(default)]
    pub last_failure_at: UnixTime,
    /// TTL.
    #[serde(default)]
    pub expires_at: UnixTime,
}

fn pk(email: &str) -> String {
    format!("LOGINFAIL#{email}")
}

const SK: &str = "LOGINFAIL";

/// The key of an address's failure record.
pub(crate) fn failures_key(email: &str) -> super::Item {
    key(&pk(email), SK)
}

/// Reads, in one strongly consistent BatchGetItem, the id of the account that owns an address and the address's
/// failure record. One round trip.
pub async fn account_and_failures(
    store: &Store,
    email: &Email,
) -> Result<(Option<String>, Option<LoginFailures>), Error> {
    let items = store
        .batch_get(vec![users::marker_key(email), failures_key(email.as_str())])
        .await?;
    let (mut user_id, mut failures) = (None, None);
    for item in items {
        match item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) {
            Some(SK) => failures = Some(decode::<LoginFailures>(item)?),
            Some(_) => user_id = Some(users::marker_user_id(item)?),
            None => {}
        }
    }
    Ok((user_id, failures))
}

/// Counts one more failure, never past `ceiling`. One round trip.
pub async fn record_failure(store: &Store, email: &str, ceiling: i64, now: UnixTime) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(failures_key(email)))
        .update_expression("ADD failures :one SET last_failure_at = :now, expires_at = :forget")
        .condition_expression("attribute_not_exists(failures) OR failures < :ceiling")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":forget", n(now + FORGET_AFTER_SECONDS))
        .expression_attribute_values(":ceiling", n(ceiling))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}

/// Claims the one attempt a backoff window allows: moves `last_failure_at` to now, only if nobody else has since
/// `seen` was read. `false` when a concurrent attempt got there first. One round trip.
pub async fn claim_attempt(store: &Store, email: &str, seen: &LoginFailures, now: UnixTime) -> Result<bool, Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(failures_key(email)))
        .update_expression("SET last_failure_at = :now")
        .condition_expression("failures = :failures AND last_failure_at = :last")
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":failures", n(seen.failures))
        .expression_attribute_values(":last", n(seen.last_failure_at))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem")
}

/// Forgets an address's failures after a successful login. One round trip.
pub async fn clear(store: &Store, email: &str) -> Result<(), Error> {
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(failures_key(email)))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::dependency("dynamodb DeleteItem", e))
}

/// A transaction item that forgets an address's failures: a reset or an emailed code proves the owner.
pub(crate) fn clear_item(store: &Store, email: &str) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(failures_key(email)));
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}
