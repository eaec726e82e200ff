//! External identities linked to accounts (`USER#<id>` / `IDENTITY#<identity id>`), and the marker that makes an
//! identity belong to one account (`IDENTITY#<sha256 of provider and subject>` / `IDENTITY`), which also finds the
//! account at sign-in. Also the spent-ID-token marks (`IDTOKEN#<sha256>`), so an ID token signs in once.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, encode, expiry_bucket, key, s, Store};
use crate::clock::UnixTime;
use crate::{secret, Error};

const SK_PREFIX: &str = "IDENTITY#";
const MARKER_SK: &str = "IDENTITY";

fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// The marker's partition: a hash, so that any subject fits a key and none can be forged into another's.
fn marker_pk(provider: &str, subject: &str) -> String {
    format!(
        "IDENTITY#{}",
        secret::sha256_b64(&[b"external-identity", provider.as_bytes(), b"\n", subject.as_bytes()])
    )
}

/// An external identity linked to an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pk: String,
    sk: String,
    /// keygate's id of the link, used in the API.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// `google`, or `entra`.
    pub provider: String,
    /// The IdP's stable subject: Google's `sub`; Entra's `<tid>:<oid>`.
    pub subject: String,
    /// The IdP configuration entry it came through (Entra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// The address the IdP gave when it was linked (for display; never used to find an account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Unix seconds.
    pub linked_at: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct Marker {
    pk: String,
    sk: String,
    user_id: String,
    identity_id: String,
}

#[derive(Serialize)]
struct SpentIdToken {
    pk: String,
    sk: String,
    expires_at: UnixTime,
    expiry_bucket: i64,
}

impl LinkedIdentity {
    /// A new link of `provider`'s `subject` to `user_id`.
    pub fn new(
        user_id: &str,
        provider: &str,
        subject: &str,
        idp: Option<&str>,
        email: Option<&str>,
        now: UnixTime,
    ) -> Self {
        let id = secret::random_b64(16);
        Self {
            pk: user_pk(user_id),
            sk: format!("{SK_PREFIX}{id}"),
            id,
            user_id: user_id.to_owned(),
            provider: provider.to_owned(),
            subject: subject.to_owned(),
            idp: idp.map(str::to_owned),
            email: email.map(str::to_owned),
            linked_at: now,
        }
    }
}

/// The account `provider`'s `subject` is linked to, read strongly consistently. One round trip.
pub async fn owner_of(store: &Store, provider: &str, subject: &str) -> Result<Option<String>, Error> {
    Ok(store
        .get::<Marker>(&marker_pk(provider, subject), MARKER_SK)
        .await?
        .map(|marker| marker.user_id))
}

/// Transaction items that link an identity: the marker (only if the identity is linked to no account) and the
/// link.
pub(crate) fn link_items(store: &Store, identity: &LinkedIdentity) -> Result<Vec<TransactWriteItem>, Error> {
    let marker = Marker {
        pk: marker_pk(&identity.provider, &identity.subject),
        sk: MARKER_SK.to_owned(),
        user_id: identity.user_id.clone(),
        identity_id: identity.id.clone(),
    };
    [encode(&marker)?, encode(identity)?]
        .into_iter()
        .map(|item| {
            let put = Put::builder()
                .table_name(store.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)");
            Ok(TransactWriteItem::builder().put(built(put.build())?).build())
        })
        .collect()
}

/// A user's linked identities, oldest first. One round trip.
pub async fn list(store: &Store, user_id: &str) -> Result<Vec<LinkedIdentity>, Error> {
    let mut found: Vec<LinkedIdentity> = store.query_prefix(&user_pk(user_id), SK_PREFIX).await?;
    found.sort_by_key(|identity| identity.linked_at);
    Ok(found)
}

/// Transaction items that unlink an identity: the link (only if it exists) and its marker (only if it is still
/// this account's).
pub(crate) fn unlink_items(store: &Store, identity: &LinkedIdentity) -> Result<Vec<TransactWriteItem>, Error> {
    let link = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&identity.pk, &identity.sk)))
        .condition_expression("attribute_exists(pk)");
    let marker = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&marker_pk(&identity.provider, &identity.subject), MARKER_SK)))
        .condition_expression("attribute_not_exists(pk) OR user_id = :user")
        .expression_attribute_values(":user", s(&identity.user_id));
    Ok(vec![
        TransactWriteItem::builder().delete(built(link.build())?).build(),
        TransactWriteItem::builder().delete(built(marker.build())?).build(),
    ])
}

/// The key of an identity's marker, for the deletion purge.
pub(crate) fn marker_key_of(identity: &LinkedIdentity) -> super::Item {
    key(&marker_pk(&identity.provider, &identity.subject), MARKER_SK)
}

/// Marks the ID token `raw` spent until `expires_at`, only if it was not: an ID token signs in (or links) once,
/// so a stolen one cannot be replayed. `false` when it was spent already. One round trip.
pub async fn spend_id_token(store: &Store, raw: &str, expires_at: UnixTime) -> Result<bool, Error> {
    let spent = SpentIdToken {
        pk: format!("IDTOKEN#{}", secret::sha256_b64(&[b"id-token", raw.as_bytes()])),
        sk: "IDTOKEN".to_owned(),
        // Kept past `exp` by the verification's leeway, during which the token is still accepted.
        expires_at: expires_at + crate::federation::oidc::LEEWAY_SECONDS,
        expiry_bucket: expiry_bucket(expires_at + crate::federation::oidc::LEEWAY_SECONDS),
    };
    // An expired mark may linger (TTL deletes late), but so does its token's expiry: the token fails first.
    let result = store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(encode(&spent)?))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    super::conditional(result, "dynamodb PutItem")
}
