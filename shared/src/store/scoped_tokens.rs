//! Scoped tokens in DynamoDB (`SCOPED#<id>` / `SCOPED`), listed per creator through GSI1 `USER#<id>#SCOPED`, and
//! the creator's ledger of live ones (`USER#<id>` / `SCOPED`), which caps how many a creator holds without reading
//! a GSI. Only hashes of secrets are stored.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::api_tokens::{deletion_time, VALID_AT_NOW};
use super::events::{self, Event};
use super::{built, encode, key, n, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::Error;

/// A stored scoped token. Read through [`StoredScopedToken`], so that items written before the validity end moved
/// to `valid_until` read the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StoredScopedToken")]
pub struct ScopedToken {
    pk: String,
    sk: String,
    /// Token id.
    pub id: String,
    /// The account that made it; the token acts for it (`act`) and dies with its access.
    pub creator_id: String,
    /// The creator's tenant when the token was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// `<type>:<id>`.
    pub resource: String,
    /// Granted scopes, sorted.
    pub scopes: Vec<String>,
    /// The creator's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// SHA-256 of the secret.
    pub secret_hash: String,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds: the end of its validity, stored as `valid_until` (checked in code wherever it is read).
    #[serde(rename = "valid_until")]
    pub expires_at: UnixTime,
    /// When the item may be deleted ([`deletion_time`]: thirty days after its expiry, so its creator could still
    /// be shown it as expired), stored as `expires_at`, the table's TTL attribute.
    #[serde(rename = "expires_at")]
    kept_until: UnixTime,
    /// Expiry bucket (DESIGN §6): the hour of `kept_until`.
    pub expiry_bucket: i64,
    /// The creator's token epoch when the token was made; a token under an older epoch is revoked (DESIGN §5).
    pub epoch: i64,
    gsi1pk: String,
    gsi1sk: String,
}

/// A scoped token as its creator sees it: never the secret or its hash.
#[derive(Debug, Serialize)]
pub struct ScopedTokenView {
    /// Token id.
    pub id: String,
    /// `<type>:<id>`.
    pub resource: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Label.
    pub label: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// One live token in a creator's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// When the token expires.
    pub expires_at: UnixTime,
    /// The token epoch it was made under.
    pub epoch: i64,
}

/// A creator's ledger of scoped tokens: id → slot. Rewritten whole, under an optimistic version, when a token is
/// made; a revocation removes its entry. Entries of expired or epoch-revoked tokens are dropped at the next
/// creation, so they do not count against the cap.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// Live (or not yet pruned) tokens.
    #[serde(default)]
    pub tokens: BTreeMap<String, Slot>,
    /// Bumped by every write; 0 when there is no ledger yet.
    #[serde(default)]
    pub version: i64,
}

#[derive(Serialize)]
struct LedgerItem<'a> {
    pk: String,
    sk: &'static str,
    tokens: &'a BTreeMap<String, Slot>,
    version: i64,
}

const SK: &str = "SCOPED";

fn pk(id: &str) -> String {
    format!("SCOPED#{id}")
}

fn ledger_key(creator_id: &str) -> super::Item {
    key(&format!("USER#{creator_id}"), SK)
}

/// The GSI1 partition of a creator's scoped tokens (listing, and an account's deletion).
pub fn creator_partition(creator_id: &str) -> String {
    format!("USER#{creator_id}#SCOPED")
}

impl ScopedToken {
    /// A new token record.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        creator_id: &str,
        tenant_id: Option<String>,
        epoch: i64,
        resource: String,
        scopes: Vec<String>,
        label: Option<String>,
        secret_hash: String,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        Self {
            pk: pk(id),
            sk: SK.to_owned(),
            id: id.to_owned(),
            creator_id: creator_id.to_owned(),
            tenant_id,
            resource,
            scopes,
            label,
            secret_hash,
            created_at: now,
            expires_at,
            kept_until: deletion_time(expires_at),
            expiry_bucket: deletion_time(expires_at),
            epoch,
            gsi1pk: creator_partition(creator_id),
            gsi1sk: format!("{now:012}#{id}"),
        }
    }

    /// The creator's view.
    pub fn view(&self) -> ScopedTokenView {
        ScopedTokenView {
            id: self.id.clone(),
            resource: self.resource.clone(),
            scopes: self.scopes.clone(),
            label: self.label.clone(),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
        }
    }
}

/// A scoped token as stored, in either shape: since the validity end moved to `valid_until`, `expires_at` is when
/// the item may be deleted; before, `expires_at` was the validity end and there was no `valid_until`.
#[derive(Deserialize)]
struct StoredScopedToken {
    pk: String,
    sk: String,
    id: String,
    creator_id: String,
    #[serde(default)]
    tenant_id: Option<String>,
    resource: String,
    scopes: Vec<String>,
    #[serde(default)]
    label: Option<String>,
    secret_hash: String,
    created_at: UnixTime,
    #[serde(default)]
    valid_until: Option<UnixTime>,
    expires_at: UnixTime,
    epoch: i64,
    gsi1pk: String,
    gsi1sk: String,
}

impl From<StoredScopedToken> for ScopedToken {
    fn from(stored: StoredScopedToken) -> Self {
        // An old item's `expires_at` is its validity end. Either shape reads as if written now, so a put of it
        // would store the new one.
        let expires_at = stored.valid_until.unwrap_or(stored.expires_at);
        Self {
            pk: stored.pk,
            sk: stored.sk,
            id: stored.id,
            creator_id: stored.creator_id,
            tenant_id: stored.tenant_id,
            resource: stored.resource,
            scopes: stored.scopes,
            label: stored.label,
            secret_hash: stored.secret_hash,
            created_at: stored.created_at,
            expires_at,
            kept_until: deletion_time(expires_at),
            expiry_bucket: deletion_time(expires_at),
            epoch: stored.epoch,
            gsi1pk: stored.gsi1pk,
            gsi1sk: stored.gsi1sk,
        }
    }
}

/// Reads a token, strongly consistent (the authorizer decides on it). One round trip.
pub async fn get(store: &Store, id: &str) -> Result<Option<ScopedToken>, Error> {
    store.get(&pk(id), SK).await
}

/// A creator's ledger, strongly consistent (the cap decides on it); empty when there is none. One round trip.
pub async fn ledger(store: &Store, creator_id: &str) -> Result<Ledger, Error> {
    Ok(store.get(&format!("USER#{creator_id}"), SK).await?.unwrap_or_default())
}

/// Stores a new token, the creator's ledger `tokens` (which includes it) and `event`, only if the ledger is still
/// the version read as `read_version`. `false` when another request changed the ledger first. One round trip.
pub async fn create(
    store: &Store,
    token: &ScopedToken,
    tokens: &BTreeMap<String, Slot>,
    read_version: i64,
    event: &Event,
) -> Result<bool, Error> {
    let ledger = LedgerItem {
        pk: format!("USER#{}", token.creator_id),
        sk: SK,
        tokens,
        version: read_version + 1,
    };
    let ledger = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(&ledger)?))
        .condition_expression("attribute_not_exists(pk) OR version = :read")
        .expression_attribute_values(":read", n(read_version));
    let token = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(token)?))
        .condition_expression("attribute_not_exists(pk)");
    store
        .transact(vec![
            TransactWriteItem::builder().put(built(ledger.build())?).build(),
            TransactWriteItem::builder().put(built(token.build())?).build(),
            events::put_item(store, event)?,
        ])
        .await
}

/// The creator's unexpired tokens, newest first (GSI1; display only). One round trip per page.
pub async fn list(store: &Store, creator_id: &str, now: UnixTime) -> Result<Vec<ScopedToken>, Error> {
    store
        .query_gsi1(creator_partition(creator_id), VALID_AT_NOW, vec![(":now", n(now))], &[])
        .await
}

/// Deletes a token of `creator_id` and its ledger entry, and records `event`, in one transaction. `false` when there
/// is no such token of theirs. One round trip.
pub async fn delete(store: &Store, id: &str, creator_id: &str, event: &Event) -> Result<bool, Error> {
    let token = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&pk(id), SK)))
        .condition_expression("creator_id = :creator")
        .expression_attribute_values(":creator", s(creator_id));
    // The version moves too, so a creation that read the ledger before this cannot write the entry back.
    let ledger = Update::builder()
        .table_name(store.table())
        .set_key(Some(ledger_key(creator_id)))
        .update_expression("REMOVE tokens.#id ADD version :one")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#id", id)
        .expression_attribute_values(":one", n(1));
    store
        .transact(vec![
            TransactWriteItem::builder().delete(built(token.build())?).build(),
            TransactWriteItem::builder().update(built(ledger.build())?).build(),
            events::put_item(store, event)?,
        ])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{decode, expiry_bucket};

    const DAY: i64 = 86_400;
    /// 2026-01-01T00:00:00Z, on the hour.
    const HOUR: UnixTime = 1_767_225_600;

    fn number(item: &super::super::Item, name: &str) -> Option<i64> {
        item.get(name).map(|value| value.as_n().unwrap().parse().unwrap())
    }

    fn token(valid_until: UnixTime) -> ScopedToken {
        ScopedToken::new(
            "id",
            "u",
            Some("t".into()),
            0,
            "company:acme".into(),
            vec!["db:read".into()],
            None,
            "hash".into(),
            HOUR - 10 * DAY,
            valid_until,
        )
    }

    #[test]
    fn a_new_token_stores_its_validity_end_apart_from_its_ttl() {
        let valid_until = HOUR + 17;
        let item = encode(&token(valid_until)).unwrap();
        assert_eq!(number(&item, "valid_until"), Some(valid_until));
        assert_eq!(number(&item, "expires_at"), Some(HOUR + 30 * DAY + 3_600));
        assert_eq!(number(&item, "expiry_bucket"), number(&item, "expires_at"));
        let read: ScopedToken = decode(item).unwrap();
        assert_eq!(read.expires_at, valid_until);
    }

    #[test]
    fn an_item_written_before_valid_until_keeps_its_expiry() {
        let valid_until = HOUR + 17;
        let mut item = encode(&token(valid_until)).unwrap();
        item.remove("valid_until");
        item.insert("expires_at".into(), n(valid_until));
        item.insert("expiry_bucket".into(), n(expiry_bucket(valid_until + 30 * DAY)));
        let read: ScopedToken = decode(item).unwrap();
        assert_eq!(read.expires_at, valid_until);
        assert_eq!(read.view().expires_at, rfc3339(valid_until));
        let again = encode(&read).unwrap();
        assert_eq!(number(&again, "valid_until"), Some(valid_until));
        assert_eq!(number(&again, "expires_at"), Some(deletion_time(valid_until)));
    }
}
