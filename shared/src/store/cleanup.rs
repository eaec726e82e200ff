//! What the scheduled cleanup reads and deletes: the `expiry` index (an item's expiry hour, then its expiry; keys
//! only), conditional deletes, and the cleanup's checkpoint (`CLEANUP` / `CHECKPOINT`).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::api_tokens::KEPT_AFTER_EXPIRY_SECONDS;
use super::{conditional, encode, key, n, Item, Store};
use crate::clock::UnixTime;
use crate::Error;

const CHECKPOINT_PK: &str = "CLEANUP";

/// Which pass a checkpoint is the place of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Deleting what expired.
    Deletes,
    /// Warning owners of tokens about to expire.
    Warnings,
}

impl Pass {
    fn sort_key(self) -> &'static str {
        match self {
            Pass::Deletes => "CHECKPOINT",
            Pass::Warnings => "WARNINGS",
        }
    }
}

/// An expired item's key, as the index gives it.
#[derive(Debug, Clone)]
pub struct Expired {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// When it expired.
    pub expires_at: UnixTime,
}

/// One page of a bucket's expired items, and where the next page starts.
#[derive(Debug)]
pub struct Page {
    /// The items of the page.
    pub items: Vec<Expired>,
    /// The index key to start the next page from; `None` when the bucket is done.
    pub next: Option<Item>,
}

/// Where the cleanup stopped: the first expiry bucket not yet fully cleaned.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    pk: String,
    sk: String,
    next_bucket: i64,
    updated_at: UnixTime,
}

/// The items of expiry bucket `bucket` that expired at or before `now`, a page at a time (strongly consistent reads
/// are not offered on a global index: a just-moved item may still show, which the conditional delete absorbs).
/// One round trip.
pub async fn expired_page(
    store: &Store,
    bucket: i64,
    now: UnixTime,
    start: Option<Item>,
    limit: i32,
) -> Result<Page, Error> {
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .index_name("expiry")
        .key_condition_expression("expiry_bucket = :bucket AND expires_at <= :now")
        .expression_attribute_values(":bucket", n(bucket))
        .expression_attribute_values(":now", n(now))
        .set_exclusive_start_key(start)
        .limit(limit)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb Query (expiry index)", e))?;
    Ok(page_of(output.items.unwrap_or_default(), output.last_evaluated_key))
}

fn page_of(items: Vec<Item>, last: Option<Item>) -> Page {
    let items = items
        .into_iter()
        .filter_map(|item| {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let expires_at = item
                .get("expires_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())?;
            Some(Expired {
                pk: text("pk")?,
                sk: text("sk")?,
                expires_at,
            })
        })
        .collect();
    Page {
        items,
        next: last.filter(|k| !k.is_empty()),
    }
}

/// Deletes an item only if it expired at or before `cutoff`: a session refreshed meanwhile (its expiry moved) is
/// left alone. `false` when the item was not deleted (moved, or already gone). One round trip.
pub async fn delete_if_expired(store: &Store, item: &Expired, cutoff: UnixTime) -> Result<bool, Error> {
    let result = store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(&item.pk, &item.sk)))
        .condition_expression("expires_at <= :cutoff")
        .expression_attribute_values(":cutoff", AttributeValue::N(cutoff.to_string()))
        .send()
        .await;
    conditional(result, "dynamodb DeleteItem")
}

/// Deletes a token (a PAT or a scoped token) only if it may be deleted at `now`: an item with `valid_until` holds
/// its deletion time in `expires_at`; one written before the validity end had its own attribute holds its
/// validity end there, and is kept [`KEPT_AFTER_EXPIRY_SECONDS`] past it. `false` when the item was not deleted
/// (not due yet, or already gone). One round trip.
pub async fn delete_token_if_expired(store: &Store, item: &Expired, now: UnixTime) -> Result<bool, Error> {
    let result = store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(&item.pk, &item.sk)))
        .condition_expression(
            "(attribute_exists(valid_until) AND expires_at <= :now) OR \
             (attribute_not_exists(valid_until) AND expires_at <= :kept)",
        )
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":kept", n(now - KEPT_AFTER_EXPIRY_SECONDS))
        .send()
        .await;
    conditional(result, "dynamodb DeleteItem")
}

/// The personal access tokens of expiry bucket `bucket` that may expire after `from`, a page at a time; the
/// caller reads each one's validity end from the token. A token's bucket is that of its deletion time: its
/// index sort key (`expires_at`) is the bucket itself ([`crate::store::api_tokens::deletion_time`] is on the
/// hour), or, for an item written before the validity end had its own attribute, its validity end, thirty days
/// before the bucket. So one range, from `from` to the bucket's first second, holds both, and leaves out the
/// sessions and events that expire during the bucket's hour. One round trip.
pub async fn expiring_tokens_page(
    store: &Store,
    bucket: i64,
    from: UnixTime,
    start: Option<Item>,
    limit: i32,
) -> Result<Page, Error> {
    if from >= bucket {
        // Every token of the bucket expired by `from` (and BETWEEN refuses an empty range).
        return Ok(page_of(Vec::new(), None));
    }
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .index_name("expiry")
        .key_condition_expression("expiry_bucket = :bucket AND expires_at BETWEEN :from AND :bucket")
        .filter_expression("begins_with(pk, :pat)")
        .expression_attribute_values(":bucket", n(bucket))
        .expression_attribute_values(":from", n(from + 1))
        .expression_attribute_values(":pat", AttributeValue::S("PAT#".to_owned()))
        .set_exclusive_start_key(start)
        .limit(limit)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb Query (expiry index)", e))?;
    Ok(page_of(output.items.unwrap_or_default(), output.last_evaluated_key))
}

/// Marks token `pk` warned about its expiry, once: `false` when it was warned already or is gone. One round trip.
pub async fn mark_expiry_warned(store: &Store, pk: &str, sk: &str, now: UnixTime) -> Result<bool, Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(pk, sk)))
        .update_expression("SET expiry_warned_at = :now")
        .condition_expression("attribute_exists(pk) AND attribute_not_exists(expiry_warned_at)")
        .expression_attribute_values(":now", n(now))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem")
}

/// The first bucket `pass` has not finished, if a run has recorded one. One round trip.
pub async fn checkpoint(store: &Store, pass: Pass) -> Result<Option<i64>, Error> {
    Ok(store
        .get::<Checkpoint>(CHECKPOINT_PK, pass.sort_key())
        .await?
        .map(|checkpoint| checkpoint.next_bucket))
}

/// Records that `pass` is done with every bucket before `bucket`. Never moves back (two runs at once). One round
/// trip.
pub async fn advance_checkpoint(store: &Store, pass: Pass, bucket: i64, now: UnixTime) -> Result<(), Error> {
    let checkpoint = Checkpoint {
        pk: CHECKPOINT_PK.to_owned(),
        sk: pass.sort_key().to_owned(),
        next_bucket: bucket,
        updated_at: now,
    };
    let result = store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(encode(&checkpoint)?))
        .condition_expression("attribute_not_exists(next_bucket) OR next_bucket < :bucket")
        .expression_attribute_values(":bucket", n(bucket))
        .send()
        .await;
    conditional(result, "dynamodb PutItem").map(|_| ())
}
