//! Passkeys (`USER#<id>` / `PASSKEY#<passkey id>`) and the credential marker that makes a WebAuthn credential id
//! unique across accounts (`CREDENTIAL#<sha256 of the credential id>` / `CREDENTIAL`), which also finds a
//! credential's owner at a usernameless sign-in.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, decode, encode, key, n, s, Store};
use crate::clock::UnixTime;
use crate::{secret, Error};

const SK_PREFIX: &str = "PASSKEY#";
const MARKER_SK: &str = "CREDENTIAL";

fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn marker_pk(credential_id: &[u8]) -> String {
    format!(
        "CREDENTIAL#{}",
        secret::sha256_b64(&[b"webauthn-credential", credential_id])
    )
}

/// A stored passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPasskey {
    pk: String,
    sk: String,
    /// keygate's id of the passkey (UUID text), used in the API.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The owner's label, 1 to 64 characters.
    pub name: String,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// webauthn-rs's `Passkey` as JSON: the public key, the signature counter, the backup flags.
    pub credential: String,
    /// The signature counter last seen (0 for synced passkeys, which do not count).
    pub counter: i64,
    /// Whether the credential may be backed up (a synced passkey).
    pub backup_eligible: bool,
    /// Whether it is backed up now.
    pub backed_up: bool,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds of the last sign-in with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<UnixTime>,
}

/// What a credential marker records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialOwner {
    pk: String,
    sk: String,
    /// The account the credential belongs to.
    pub user_id: String,
    /// The passkey's id.
    pub passkey_id: String,
}

impl StoredPasskey {
    /// A new passkey of `user_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        user_id: &str,
        name: String,
        credential_id: String,
        credential: String,
        counter: i64,
        backup_eligible: bool,
        backed_up: bool,
        now: UnixTime,
    ) -> Self {
        Self {
            pk: user_pk(user_id),
            sk: format!("{SK_PREFIX}{id}"),
            id,
            user_id: user_id.to_owned(),
            name,
            credential_id,
            credential,
            counter,
            backup_eligible,
            backed_up,
            created_at: now,
            last_used_at: None,
        }
    }
}

/// The key of one passkey item.
pub(crate) fn passkey_key(user_id: &str, passkey_id: &str) -> super::Item {
    key(&user_pk(user_id), &format!("{SK_PREFIX}{passkey_id}"))
}

/// Transaction items that store a new passkey and claim its credential id; the claim fails when any account has
/// registered that credential already.
pub(crate) fn create_items(
    store: &Store,
    passkey: &StoredPasskey,
    raw_credential_id: &[u8],
) -> Result<Vec<TransactWriteItem>, Error> {
    let marker = CredentialOwner {
        pk: marker_pk(raw_credential_id),
        sk: MARKER_SK.to_owned(),
        user_id: passkey.user_id.clone(),
        passkey_id: passkey.id.clone(),
    };
    let put = |item| -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(store.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        Ok(TransactWriteItem::builder().put(built(put.build())?).build())
    };
    Ok(vec![put(encode(&marker)?)?, put(encode(passkey)?)?])
}

/// The owner of a credential id, if registered. One round trip.
pub async fn owner_of(store: &Store, raw_credential_id: &[u8]) -> Result<Option<CredentialOwner>, Error> {
    store.get(&marker_pk(raw_credential_id), MARKER_SK).await
}

/// One passkey of a user. One round trip.
pub async fn get(store: &Store, user_id: &str, passkey_id: &str) -> Result<Option<StoredPasskey>, Error> {
    store.get(&user_pk(user_id), &format!("{SK_PREFIX}{passkey_id}")).await
}

/// Every passkey of a user, oldest first (an account has few). One round trip per page.
pub async fn list(store: &Store, user_id: &str) -> Result<Vec<StoredPasskey>, Error> {
    let mut found: Vec<StoredPasskey> = store.query_prefix(&user_pk(user_id), SK_PREFIX).await?;
    found.sort_by_key(|p| p.created_at);
    Ok(found)
}

/// Renames a passkey of `user_id`; `None` when it has none with that id. One round trip.
pub async fn rename(
    store: &Store,
    user_id: &str,
    passkey_id: &str,
    name: &str,
) -> Result<Option<StoredPasskey>, Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(passkey_key(user_id, passkey_id)))
        .update_expression("SET #name = :name")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":name", s(name))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await;
    match result {
        Ok(output) => output.attributes.map(decode).transpose(),
        Err(err) if super::is_condition_failure(&err) => Ok(None),
        Err(err) => Err(Error::dependency("dynamodb UpdateItem", err)),
    }
}

/// Transaction items that delete a passkey of its owner and release its credential id.
pub(crate) fn delete_items(
    store: &Store,
    passkey: &StoredPasskey,
    raw_credential_id: &[u8],
) -> Result<Vec<TransactWriteItem>, Error> {
    let item = Delete::builder()
        .table_name(store.table())
        .set_key(Some(passkey_key(&passkey.user_id, &passkey.id)))
        .condition_expression("attribute_exists(pk)");
    let marker = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&marker_pk(raw_credential_id), MARKER_SK)))
        .condition_expression("attribute_not_exists(pk) OR user_id = :user")
        .expression_attribute_values(":user", s(&passkey.user_id));
    Ok(vec![
        TransactWriteItem::builder().delete(built(item.build())?).build(),
        TransactWriteItem::builder().delete(built(marker.build())?).build(),
    ])
}

/// Transaction items that delete a listed passkey and its credential marker (an administrator's reset).
pub(crate) fn delete_all_items(store: &Store, passkey: &StoredPasskey) -> Result<Vec<TransactWriteItem>, Error> {
    use base64::Engine as _;
    // A stored id always decodes (keygate wrote it); an undecodable one has no marker to free.
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&passkey.credential_id)
        .unwrap_or_default();
    delete_items(store, passkey, &raw)
}

/// A transaction item that records a sign-in with the passkey: the new credential state (counter, backup flags)
/// and the time, only if the counter is still the one read, so two sign-ins racing cannot both move it.
pub(crate) fn used_item(
    store: &Store,
    passkey: &StoredPasskey,
    credential: &str,
    counter: i64,
    backed_up: bool,
    backup_eligible: bool,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(passkey_key(&passkey.user_id, &passkey.id)))
        .update_expression(
            "SET credential = :credential, #counter = :counter, backed_up = :backed_up, \
             backup_eligible = :eligible, last_used_at = :now",
        )
        .condition_expression("attribute_exists(pk) AND #counter = :read")
        .expression_attribute_names("#counter", "counter")
        .expression_attribute_values(":credential", s(credential))
        .expression_attribute_values(":counter", n(counter))
        .expression_attribute_values(":backed_up", AttributeValue::Bool(backed_up))
        .expression_attribute_values(":eligible", AttributeValue::Bool(backup_eligible))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":read", n(passkey.counter));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// The key of a credential's marker, given the passkey's stored (base64url) credential id; `None` for a stored id
/// that does not decode (never written by keygate).
pub(crate) fn marker_key_of(passkey: &StoredPasskey) -> Option<super::Item> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&passkey.credential_id)
        .ok()?;
    Some(key(&marker_pk(&raw), MARKER_SK))
}
