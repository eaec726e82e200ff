//! Personal access tokens (`PAT#<id>` / `PAT`). Only hashes of secrets are stored.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, conditional, encode, expiry_bucket, key, n, s, Store, EXPIRY_BUCKET_SECONDS};
use crate::clock::{rfc3339, UnixTime};
use crate::Error;

/// `last_used_at` is written at most this often per token, so verification stays one read.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 3_600;
/// How long an expired token (a PAT or a scoped token) is kept before the scheduled cleanup or TTL may delete it.
pub const KEPT_AFTER_EXPIRY_SECONDS: i64 = 30 * 86_400;

/// True while a token (a PAT or a scoped token) is valid at `:now`, as a condition or filter expression. The
/// validity end is `valid_until`; an item written before it had its own attribute has only `expires_at`, which
/// was then the validity end; a permanent PAT has neither.
pub(crate) const VALID_AT_NOW: &str = "(attribute_exists(valid_until) AND valid_until > :now) OR \
     (attribute_not_exists(valid_until) AND (attribute_not_exists(expires_at) OR expires_at > :now))";

/// When a token (a PAT or a scoped token) valid until `valid_until` may be deleted: the first hour at or after
/// [`KEPT_AFTER_EXPIRY_SECONDS`] past it. It is the item's `expires_at`, the table's TTL attribute, and its
/// expiry bucket. On the hour, so that in its bucket a token's index sort key is the bucket itself: the expiry
/// warnings read a bucket's tokens without the sessions and events that expire later in that hour
/// ([`crate::store::cleanup::expiring_tokens_page`]).
pub fn deletion_time(valid_until: UnixTime) -> UnixTime {
    let kept = valid_until + KEPT_AFTER_EXPIRY_SECONDS;
    let hour = expiry_bucket(kept);
    if hour == kept {
        kept
    } else {
        hour + EXPIRY_BUCKET_SECONDS
    }
}

/// A stored token. Read through [`StoredApiToken`], so that items written before the validity end moved to
/// `valid_until` read the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "StoredApiToken")]
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
    /// Unix seconds: the end of its validity, stored as `valid_until` (checked in code wherever it is read).
    /// `None` for a service account's permanent token.
    #[serde(rename = "valid_until", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<UnixTime>,
    /// When the item may be deleted ([`deletion_time`]), stored as `expires_at`, the table's TTL attribute. `None`
    /// for a permanent token, which has no TTL.
    #[serde(rename = "expires_at", skip_serializing_if = "Option::is_none")]
    kept_until: Option<UnixTime>,
    /// Expiry bucket (DESIGN §6): the hour of `kept_until`. None for a permanent token.
    #[serde(skip_serializing_if = "Option::is_none")]
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
            kept_until: expires_at.map(deletion_time),
            expiry_bucket: expires_at.map(deletion_time),
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

/// A token as stored, in either shape: since the validity end moved to `valid_until`, `expires_at` is when the item
/// may be deleted; before, `expires_at` was the validity end and there was no `valid_until`.
#[derive(Deserialize)]
struct StoredApiToken {
    pk: String,
    sk: String,
    id: String,
    user_id: String,
    name: String,
    scopes: Vec<String>,
    secret_hash: String,
    #[serde(default)]
    previous_hash: Option<String>,
    #[serde(default)]
    previous_valid_until: Option<UnixTime>,
    created_at: UnixTime,
    #[serde(default)]
    valid_until: Option<UnixTime>,
    #[serde(default)]
    expires_at: Option<UnixTime>,
    #[serde(default)]
    epoch: i64,
    #[serde(default)]
    last_used_at: Option<UnixTime>,
    #[serde(default)]
    rotated_at: Option<UnixTime>,
    #[serde(default)]
    created_by: Option<String>,
    gsi1pk: String,
    gsi1sk: String,
}

impl From<StoredApiToken> for ApiToken {
    fn from(stored: StoredApiToken) -> Self {
        // An old item's `expires_at` is its validity end: it must never read as a permanent token. Either shape
        // reads as if written now, so a put of it would store the new one.
        let expires_at = stored.valid_until.or(stored.expires_at);
        Self {
            pk: stored.pk,
            sk: stored.sk,
            id: stored.id,
            user_id: stored.user_id,
            name: stored.name,
            scopes: stored.scopes,
            secret_hash: stored.secret_hash,
            previous_hash: stored.previous_hash,
            previous_valid_until: stored.previous_valid_until,
            created_at: stored.created_at,
            expires_at,
            kept_until: expires_at.map(deletion_time),
            expiry_bucket: expires_at.map(deletion_time),
            epoch: stored.epoch,
            last_used_at: stored.last_used_at,
            rotated_at: stored.rotated_at,
            created_by: stored.created_by,
            gsi1pk: stored.gsi1pk,
            gsi1sk: stored.gsi1sk,
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
            VALID_AT_NOW,
            vec![(":now", n(now))],
            &[],
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
        .condition_expression(format!("secret_hash = :old AND ({VALID_AT_NOW})"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::decode;

    const DAY: i64 = 86_400;
    /// 2026-01-01T00:00:00Z, on the hour.
    const HOUR: UnixTime = 1_767_225_600;

    fn number(item: &super::super::Item, name: &str) -> Option<i64> {
        item.get(name).map(|value| value.as_n().unwrap().parse().unwrap())
    }

    fn token(expires_at: Option<UnixTime>) -> ApiToken {
        ApiToken::new(
            "id",
            "u",
            0,
            "ci".into(),
            vec!["profile:read".into()],
            "hash".into(),
            HOUR - 10 * DAY,
            expires_at,
        )
    }

    #[test]
    fn deletion_is_the_first_hour_thirty_days_after_the_validity_end() {
        assert_eq!(deletion_time(HOUR), HOUR + 30 * DAY);
        assert_eq!(deletion_time(HOUR + 1), HOUR + 30 * DAY + 3_600);
        assert_eq!(deletion_time(HOUR - 1), HOUR + 30 * DAY);
        assert_eq!(deletion_time(HOUR + 3_599), HOUR + 30 * DAY + 3_600);
    }

    #[test]
    fn a_new_token_stores_its_validity_end_apart_from_its_ttl() {
        let valid_until = HOUR + 17;
        let item = encode(&token(Some(valid_until))).unwrap();
        assert_eq!(number(&item, "valid_until"), Some(valid_until));
        assert_eq!(number(&item, "expires_at"), Some(HOUR + 30 * DAY + 3_600));
        assert_eq!(number(&item, "expiry_bucket"), number(&item, "expires_at"));
        let read: ApiToken = decode(item).unwrap();
        assert_eq!(read.expires_at, Some(valid_until));
        assert!(!read.is_expired(valid_until - 1) && read.is_expired(valid_until));
    }

    #[test]
    fn a_permanent_token_has_no_validity_end_and_no_ttl() {
        let item = encode(&token(None)).unwrap();
        for absent in ["valid_until", "expires_at", "expiry_bucket"] {
            assert!(!item.contains_key(absent), "{absent}");
        }
        let read: ApiToken = decode(item).unwrap();
        assert_eq!(read.expires_at, None);
        assert!(!read.is_expired(i64::MAX));
    }

    #[test]
    fn an_item_written_before_valid_until_keeps_its_expiry() {
        // The old shape: `expires_at` is the validity end, the bucket that of thirty days later, no `valid_until`.
        let valid_until = HOUR + 17;
        let mut item = encode(&token(Some(valid_until))).unwrap();
        item.remove("valid_until");
        item.insert("expires_at".into(), n(valid_until));
        item.insert("expiry_bucket".into(), n(expiry_bucket(valid_until + 30 * DAY)));
        let read: ApiToken = decode(item).unwrap();
        assert_eq!(read.expires_at, Some(valid_until), "never a permanent token");
        assert!(!read.is_expired(valid_until - 1) && read.is_expired(valid_until));
        assert_eq!(read.view().expires_at.as_deref(), Some(rfc3339(valid_until).as_str()));
        // Written again, it takes the new shape.
        let again = encode(&read).unwrap();
        assert_eq!(number(&again, "valid_until"), Some(valid_until));
        assert_eq!(number(&again, "expires_at"), Some(deletion_time(valid_until)));
    }
}
