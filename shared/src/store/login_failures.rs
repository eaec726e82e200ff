//! Consecutive failed password attempts per account (`LOGINFAIL#<email>` / `LOGINFAIL`), for the login backoff.
//! Kept for every address tried, with or without an account, so the backoff itself reveals nothing.

use aws_sdk_dynamodb::types::{Delete, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, conditional, decode, encode, expiry_bucket, is_condition_failure, key, n, Store};
use crate::clock::UnixTime;
use crate::Error;

/// A day without failures forgets them.
pub const FORGET_AFTER_SECONDS: i64 = 86_400;

/// A claim holds the next attempt back this long, until its verdict sets the real wait.
pub const CLAIM_HOLD_SECONDS: i64 = 1;

/// The failure record of one address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginFailures {
    pk: String,
    sk: String,
    /// Attempts claimed and not followed by a success.
    #[serde(default)]
    pub failures: i64,
    /// When the last attempt was claimed.
    #[serde(default)]
    pub last_failure_at: UnixTime,
    /// No attempt past the free ones may be claimed before this.
    #[serde(default)]
    pub next_attempt_at: UnixTime,
    /// TTL.
    #[serde(default)]
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    #[serde(default)]
    pub expiry_bucket: i64,
}

fn pk(email: &str) -> String {
    format!("LOGINFAIL#{email}")
}

const SK: &str = "LOGINFAIL";

/// The backoff key of an account's second-factor guesses (see [`crate::backoff::claim_second_factor`]). It
/// cannot collide with an address (no `@`) or a service account's key.
pub fn second_factor_key(user_id: &str) -> String {
    format!("mfa:{user_id}")
}

/// The key of the directory guard of the address `email` at the configuration entry `idp` (see
/// [`crate::backoff::claim_directory`]): hashed, so it cannot collide with an address or another key.
pub fn directory_key(idp: &str, email: &str) -> String {
    format!(
        "ldap:{idp}:{}",
        crate::secret::sha256_b64(&[idp.as_bytes(), b"\n", email.as_bytes()])
    )
}

/// The key of an address's failure record.
pub(crate) fn failures_key(email: &str) -> super::Item {
    key(&pk(email), SK)
}

/// How a record counts: failures allowed before any wait, the count at which it refuses outright, and how long
/// after the last claimed attempt it is forgotten.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures allowed before the waits start.
    pub free: i64,
    /// No attempt is claimed at this count.
    pub ceiling: i64,
    /// Seconds after the last claimed attempt that the record is forgotten.
    pub forget_after: i64,
}

/// What a claim found.
#[derive(Debug, Clone)]
pub enum Claim {
    /// The attempt may go ahead; it is already counted as failure number `failures`.
    Granted {
        /// The count including this attempt.
        failures: i64,
        /// The record as the claim found it, to restore if the attempt is never judged.
        before: Box<LoginFailures>,
    },
    /// The record refused it as it stood.
    Refused(Box<LoginFailures>),
}

/// Counts an attempt as a failure before it is judged, if the record allows one now: fewer than `free` failures,
/// or fewer than `ceiling` and past `next_attempt_at`. A success deletes the record afterwards. The condition
/// makes parallel attempts serialise, so a burst gets no more verdicts than the backoff allows. One round trip
/// (two when it replaces a record that has outlived its expiry).
pub async fn claim(store: &Store, email: &str, limits: Limits, now: UnixTime) -> Result<Claim, Error> {
    let Limits {
        free,
        ceiling,
        forget_after,
    } = limits;
    let forget = now + forget_after;
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(failures_key(email)))
        .update_expression(
            "ADD failures :one SET last_failure_at = :now, next_attempt_at = :hold, expires_at = :forget, \
             expiry_bucket = :bucket",
        )
        .condition_expression(
            "attribute_not_exists(failures) OR (expires_at > :now AND (failures < :free OR \
             (failures < :ceiling AND next_attempt_at <= :now)))",
        )
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":hold", n(now + CLAIM_HOLD_SECONDS))
        .expression_attribute_values(":forget", n(forget))
        .expression_attribute_values(":bucket", n(expiry_bucket(forget)))
        .expression_attribute_values(":free", n(free))
        .expression_attribute_values(":ceiling", n(ceiling))
        .return_values(ReturnValue::AllOld)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let old = match result {
        Ok(output) => {
            let before = output
                .attributes
                .filter(|a| !a.is_empty())
                .map(decode::<LoginFailures>)
                .transpose()?
                .unwrap_or_default();
            return Ok(Claim::Granted {
                failures: before.failures + 1,
                before: Box::new(before),
            });
        }
        Err(err) if is_condition_failure(&err) => match err.into_service_error() {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                e.item.map(decode::<LoginFailures>).transpose()?.unwrap_or_default()
            }
            _ => LoginFailures::default(),
        },
        Err(err) => return Err(Error::dependency("dynamodb UpdateItem", err)),
    };
    if old.expires_at > now {
        return Ok(Claim::Refused(Box::new(old)));
    }
    // TTL deletes late: a record past its expiry counts as absent, so start it again at one.
    let fresh = LoginFailures {
        pk: pk(email),
        sk: SK.to_owned(),
        failures: 1,
        last_failure_at: now,
        next_attempt_at: now + CLAIM_HOLD_SECONDS,
        expires_at: forget,
        expiry_bucket: expiry_bucket(forget),
    };
    let replaced = store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(encode(&fresh)?))
        .condition_expression("expires_at <= :now")
        .expression_attribute_values(":now", n(now))
        .send()
        .await;
    if conditional(replaced, "dynamodb PutItem")? {
        Ok(Claim::Granted {
            failures: 1,
            before: Box::default(),
        })
    } else {
        // A concurrent attempt replaced it first and holds the slot.
        Ok(Claim::Refused(Box::new(fresh)))
    }
}

/// Sets the wait that follows the failure a claim counted, unless another attempt has been claimed since (it sets
/// its own). One round trip.
pub async fn hold_until(store: &Store, email: &str, failures: i64, until: UnixTime) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(failures_key(email)))
        .update_expression("SET next_attempt_at = :until")
        .condition_expression("failures = :failures")
        .expression_attribute_values(":until", n(until))
        .expression_attribute_values(":failures", n(failures))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}

/// Gives back a claim that was never judged (the request was refused before argon2 ran), restoring the record as
/// the claim found it, unless another attempt has been claimed since. One round trip.
pub async fn release(store: &Store, email: &str, failures: i64, before: &LoginFailures) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(failures_key(email)))
        .update_expression("SET failures = :before, next_attempt_at = :next")
        .condition_expression("failures = :failures")
        .expression_attribute_values(":before", n(failures - 1))
        .expression_attribute_values(":next", n(before.next_attempt_at))
        .expression_attribute_values(":failures", n(failures))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}

/// A transaction item that forgets an address's failures: a success, a reset or an emailed code.
pub(crate) fn clear_item(store: &Store, email: &str) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(failures_key(email)));
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}
