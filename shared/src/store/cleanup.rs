//! What the scheduled cleanup reads and deletes: the `expiry` index (an item's expiry hour, then its expiry; keys
//! only), conditional deletes, and the cleanup's checkpoint (`CLEANUP` / `CHECKPOINT`).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{conditional, encode, key, n, Item, Store};
use crate::clock::UnixTime;
use crate::Error;

const CHECKPOINT_PK: &str = "CLEANUP";
const CHECKPOINT_SK: &str = "CHECKPOINT";

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
    let items = output
        .items
        .unwrap_or_default()
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
    Ok(Page {
        items,
        next: output.last_evaluated_key.filter(|k| !k.is_empty()),
    })
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

/// The first bucket not yet fully cleaned, if a run has recorded one. One round trip.
pub async fn checkpoint(store: &Store) -> Result<Option<i64>, Error> {
    Ok(store
        .get::<Checkpoint>(CHECKPOINT_PK, CHECKPOINT_SK)
        .await?
        .map(|checkpoint| checkpoint.next_bucket))
}

/// Records that every bucket before `bucket` is clean. Never moves back (two runs at once). One round trip.
pub async fn advance_checkpoint(store: &Store, bucket: i64, now: UnixTime) -> Result<(), Error> {
    let checkpoint = Checkpoint {
        pk: CHECKPOINT_PK.to_owned(),
        sk: CHECKPOINT_SK.to_owned(),
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
