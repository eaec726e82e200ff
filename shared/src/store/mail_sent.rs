//! Claims of sent emails (`MAILSENT#<sqs message id>` / `MAILSENT`): the mailer claims a queued message before
//! sending it, so a message SQS delivers twice is sent once, and releases the claim when SES fails, so the retry
//! sends it.

use serde::{Deserialize, Serialize};

use super::{conditional, encode, expiry_bucket, key, n, Store};
use crate::clock::UnixTime;
use crate::Error;

/// How long a claim is kept: longer than a message can stay on the outbox queue (4 days).
pub const CLAIM_TTL_SECONDS: i64 = 5 * 86_400;

const SK: &str = "MAILSENT";

/// A claim on one queued message.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    pk: String,
    sk: String,
    claimed_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    expiry_bucket: i64,
}

fn pk_for(message_id: &str) -> String {
    format!("MAILSENT#{message_id}")
}

/// Claims a message: `Ok(true)` for the first claim, `Ok(false)` when a live claim exists (the message was sent,
/// or is being sent). One round trip, a conditional PutItem.
pub async fn claim(store: &Store, message_id: &str, now: UnixTime) -> Result<bool, Error> {
    let claim = Claim {
        pk: pk_for(message_id),
        sk: SK.to_owned(),
        claimed_at: now,
        expires_at: now + CLAIM_TTL_SECONDS,
        expiry_bucket: expiry_bucket(now + CLAIM_TTL_SECONDS),
    };
    let result = store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(encode(&claim)?))
        // TTL deletes late: an expired claim counts as absent.
        .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
        .expression_attribute_values(":now", n(now))
        .send()
        .await;
    conditional(result, "dynamodb PutItem")
}

/// Releases a claim after a failed send, so the message's retry is sent. One round trip.
pub async fn release(store: &Store, message_id: &str) -> Result<(), Error> {
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(&pk_for(message_id), SK)))
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb DeleteItem", e))?;
    Ok(())
}
