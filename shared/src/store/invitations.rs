//! Invitations (`INVITE#<sha256 of token>` / `INVITE`): 256-bit, single use, 7 days, stored hashed. Each names the
//! invited account and the address it was sent to.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, encode, expiry_bucket, key, n, Store};
use crate::clock::UnixTime;
use crate::{secret, Error};

/// How long an invitation can be accepted.
pub const INVITATION_TTL_SECONDS: i64 = 7 * 86_400;
/// Bytes of randomness in an invitation token.
const TOKEN_BYTES: usize = 32;

/// A stored invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pk: String,
    sk: String,
    /// The invited account.
    pub user_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The address the link was sent to.
    pub email: String,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    #[serde(default)]
    pub expiry_bucket: i64,
}

const SK: &str = "INVITE";

/// The invalid-token answer for every kind of bad invitation token (forged, used, expired).
pub const INVALID: Error = Error::InvalidToken("The invitation is invalid, used or expired.");

fn pk_for(token: &str) -> String {
    format!("INVITE#{}", secret::sha256_b64(&[b"invitation", token.as_bytes()]))
}

/// A new invitation to the account `user_id` of `tenant_id`, and the token to put in the link.
pub fn issue(user_id: &str, tenant_id: &str, email: &str, now: UnixTime) -> (Invitation, String) {
    let token = secret::random_b64(TOKEN_BYTES);
    let expires_at = now + INVITATION_TTL_SECONDS;
    let invitation = Invitation {
        pk: pk_for(&token),
        sk: SK.to_owned(),
        user_id: user_id.to_owned(),
        tenant_id: tenant_id.to_owned(),
        email: email.to_owned(),
        created_at: now,
        expires_at,
        expiry_bucket: expiry_bucket(expires_at),
    };
    (invitation, token)
}

/// A transaction item that stores an invitation.
pub(crate) fn put_item(store: &Store, invitation: &Invitation) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(invitation)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// Reads a live invitation by its token: 401 `invalid_token` for a malformed, unknown or expired one (TTL deletes
/// late, so expiry is checked here). One round trip; none for a token of the wrong shape.
pub async fn get(store: &Store, token: &str, now: UnixTime) -> Result<Invitation, Error> {
    if !secret::is_b64_of_len(token, TOKEN_BYTES) {
        return Err(INVALID);
    }
    store
        .get::<Invitation>(&pk_for(token), SK)
        .await?
        .filter(|invitation| invitation.expires_at > now)
        .ok_or(INVALID)
}

/// A transaction item that consumes an invitation, only if it is still there and live, so it is accepted once.
pub(crate) fn consume_item(store: &Store, invitation: &Invitation, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&invitation.pk, SK)))
        .condition_expression("attribute_exists(pk) AND expires_at > :now")
        .expression_attribute_values(":now", n(now));
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}

/// Deletes an invitation that can never be accepted. One round trip.
pub async fn discard(store: &Store, invitation: &Invitation) -> Result<(), Error> {
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(&invitation.pk, SK)))
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb DeleteItem", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_store_only_a_hash_of_the_token_and_last_a_week() {
        let (invitation, token) = issue("u", "t", "a@example.com", 100);
        assert!(secret::is_b64_of_len(&token, 32));
        assert!(!invitation.pk.contains(&token));
        assert_eq!(invitation.pk, pk_for(&token));
        assert_eq!(invitation.expires_at, 100 + 7 * 86_400);
        assert_eq!(invitation.expiry_bucket, expiry_bucket(invitation.expires_at));
    }
}
