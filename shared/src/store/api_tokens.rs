//! Personal access tokens (`PAT#<id>` / `PAT`). Only hashes of secrets are stored.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, conditional, encode, expiry_bucket, key, n, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::Error;

/// `last_used_at` is written at most this often per token, so verification stays one read.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 3_600;
/// How long an expired token stays listed as expired before the scheduled cleanup may delete it.
pub const KEPT_AFTER_EXPIRY_SECONDS: i64 = 30 * 86_400;

/// A stored token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pk: String,
    sk: String,
    /// Token id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Owner's label.
    pub name: String,
    /// Granted scopes, sorted.
    pub scopes: Vec<String>,
    /// SHA-256 of the current secret.
    pub secret_hash: String,
    /// SHA-256 of the secret before the last rotation, valid until `previous_valid_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// End of the rotation grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<UnixTime>,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute (TTL deletes late, so reads check it). `None` for a service
    /// account's permanent token, which has no TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<UnixTime>,
    /// Expiry bucket (DESIGN §6): the hour the scheduled cleanup may delete the token, a while after it expires so
    /// its owner can still see it as expired. None for a permanent token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_bucket: Option<i64>,
    /// The owner's token epoch when the token was made; a token under an older epoch is revoked (DESIGN §5).
    #[serde(default)]
    pub epoch: i64,
    /// When the token was last used, to the hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<UnixTime>,
    /// When the secret was last rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<UnixTime>,
    /// Who minted it, when not its owner (a manager minting for a service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    gsi1pk: String,
    gsi1sk: String,
}

/// A token's metadata as its owner sees it: never a secret or a hash.
#[derive(Debug, Serialize)]
pub struct ApiTokenView {
    /// Token id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `null` for a permanent token.
    pub expires_at: Option<String>,
    /// RFC 3339, to the hour.
    pub last_used_at: Option<String>,
    /// RFC 3339.
    pub rotated_at: Option<String>,
    /// Who minted it, when not its owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

const SK: &str = "PAT";

fn pk(id: &str) -> String {
    format!("PAT#{id}")
}

impl ApiToken {
    /// A new token record.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        user_id: &str,
        epoch: i64,
        name: String,
        scopes: Vec<String>,
        secret_hash: String,
        now: UnixTime,
        expires_at: Option<UnixTime>,
    ) -> Self {
        Self {
            pk: pk(id),
            sk: SK.to_owned(),
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            name,
            scopes,
            secret_hash,
            previous_hash: None,
            previous_valid_until: None,
            created_at: now,
            expires_at,
            expiry_bucket: expires_at.map(|at| expiry_bucket(at + KEPT_AFTER_EXPIRY_SECONDS)),
            epoch,
            last_used_at: None,
            rotated_at: None,
            created_by: None,
            gsi1pk: format!("USER#{user_id}#PATS"),
            gsi1sk: format!("{now:012}#{id}"),
        }
    }

    /// Whether the token has expired by `now` (a permanent one never does).
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The owner's view.
    pub fn view(&self) -> ApiTokenView {
        ApiTokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_at: rfc3339(self.created_at),
            expires_at: self.expires_at.map(rfc3339),
            last_used_at: self.last_used_at.map(rfc3339),
            rotated_at: self.rotated_at.map(rfc3339),
            created_by: self.created_by.clone(),
        }
    }
}

/// A transaction item that stores a new token.
pub(crate) fn create_item(store: &Store, token: &ApiToken) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(token)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// A transaction item that deletes token `id`, only if `user_id` owns it.
pub(crate) fn delete_item(store: &Store, id: &str, user_id: &str) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&pk(id), SK)))
        .condition_expression("user_id = :user")
        .expression_attribute_values(":user", s(user_id));
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}

/// Reads a token. One round trip.
pub async fn get(store: &Store, id: &str) -> Result<Option<ApiToken>, Error> {
    store.get(&pk(id), SK).await
}

/// The owner's unexpired tokens, newest first (GSI1; display only). One round trip per page.
pub async fn list(store: &Store, user_id: &str, now: UnixTime) -> Result<Vec<ApiToken>, Error> {
    store
        .query_gsi1(
            format!("USER#{user_id}#PATS"),
            "attribute_not_exists(expires_at) OR expires_at > :now",
            vec![(":now", n(now))],
        )
        .await
}

/// A transaction item that replaces the secret hash, keeping the old one valid until `grace_until`, only if the
/// secret is still the one read (two concurrent rotations cannot both win) and the token has not expired; and the
/// token as that item leaves it.
pub(crate) fn rotate_item(
    store: &Store,
    token: &ApiToken,
    new_hash: &str,
    grace_until: UnixTime,
    now: UnixTime,
) -> Result<(TransactWriteItem, ApiToken), Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(key(&token.pk, SK)))
        .update_expression(
            "SET secret_hash = :new, previous_hash = :old, previous_valid_until = :grace, rotated_at = :now",
        )
        .condition_expression("secret_hash = :old AND (attribute_not_exists(expires_at) OR expires_at > :now)")
        .expression_attribute_values(":new", s(new_hash))
        .expression_attribute_values(":old", s(&token.secret_hash))
        .expression_attribute_values(":grace", n(grace_until))
        .expression_attribute_values(":now", n(now));
    let mut rotated = token.clone();
    rotated.previous_hash = Some(std::mem::replace(&mut rotated.secret_hash, new_hash.to_owned()));
    rotated.previous_valid_until = Some(grace_until);
    rotated.rotated_at = Some(now);
    Ok((
        TransactWriteItem::builder().update(built(update.build())?).build(),
        rotated,
    ))
}

/// Records a use, at most once per hour per token: the condition makes concurrent uses write once.
pub async fn touch(store: &Store, id: &str, now: UnixTime) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&pk(id), SK)))
        .update_expression("SET last_used_at = :now")
        .condition_expression("attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at <= :stale)")
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":stale", n(now - LAST_USED_RESOLUTION_SECONDS))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}
