//! Scoped tokens in DynamoDB (`SCOPED#<id>` / `SCOPED`), listed per creator through GSI1 `USER#<id>#SCOPED`, and
//! the creator's ledger of live ones (`USER#<id>` / `SCOPED`), which caps how many a creator holds without reading
//! a GSI. Only hashes of secrets are stored.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::events::{self, Event};
use super::{built, encode, expiry_bucket, key, n, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::Error;

/// A stored scoped token.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Unix seconds; also the TTL attribute (TTL deletes late, so reads check it).
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
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
            // Listed by the cleanup thirty days after it expires, so its creator still sees it as expired.
            expiry_bucket: expiry_bucket(expires_at + super::api_tokens::KEPT_AFTER_EXPIRY_SECONDS),
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
        .query_gsi1(
            creator_partition(creator_id),
            "expires_at > :now",
            vec![(":now", n(now))],
        )
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
