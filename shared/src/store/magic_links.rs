//! Magic-link tokens (`MAGIC#<sha256 of token>` / `MAGIC`): 256-bit, single use, 15 minutes, stored hashed.

use aws_sdk_dynamodb::types::ReturnValue;
use serde::{Deserialize, Serialize};

use super::{decode, expiry_bucket, is_condition_failure, key, n, Store};
use crate::clock::UnixTime;
use crate::{secret, Error};

/// How long a link works.
pub const LINK_TTL_SECONDS: i64 = 900;
/// Bytes of randomness in a link token.
const TOKEN_BYTES: usize = 32;

/// A stored link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MagicLink {
    pk: String,
    sk: String,
    /// The account the link logs in to.
    pub user_id: String,
    /// Where the application should send the user afterwards; already checked against the allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    #[serde(default)]
    pub expiry_bucket: i64,
}

const SK: &str = "MAGIC";

fn pk_for(token: &str) -> String {
    format!("MAGIC#{}", secret::sha256_b64(&[b"magic-link", token.as_bytes()]))
}

/// A new link for a user, and the token to put in the email.
pub fn issue(user_id: &str, redirect_uri: Option<String>, now: UnixTime) -> (MagicLink, String) {
    let token = secret::random_b64(TOKEN_BYTES);
    let link = MagicLink {
        pk: pk_for(&token),
        sk: SK.to_owned(),
        user_id: user_id.to_owned(),
        redirect_uri,
        created_at: now,
        expires_at: now + LINK_TTL_SECONDS,
        expiry_bucket: expiry_bucket(now + LINK_TTL_SECONDS),
    };
    (link, token)
}

/// Stores a link.
pub async fn store(store: &Store, link: &MagicLink) -> Result<(), Error> {
    store.put(link).await
}

/// Redeems a link: deletes it if it exists and has not expired, in one conditional write, so a second use
/// always fails. One round trip; none for a token of the wrong shape.
pub async fn redeem(store: &Store, token: &str, now: UnixTime) -> Result<MagicLink, Error> {
    const INVALID: Error = Error::InvalidToken("The link is invalid, used or expired.");
    if !secret::is_b64_of_len(token, TOKEN_BYTES) {
        return Err(INVALID);
    }
    let result = store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(&pk_for(token), SK)))
        .condition_expression("attribute_exists(pk) AND expires_at > :now")
        .expression_attribute_values(":now", n(now))
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    match result {
        Ok(output) => decode(output.attributes.ok_or(INVALID)?),
        Err(err) if is_condition_failure(&err) => Err(INVALID),
        Err(err) => Err(Error::dependency("dynamodb DeleteItem", err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_store_only_a_hash_of_the_token() {
        let (link, token) = issue("u", None, 100);
        assert!(secret::is_b64_of_len(&token, 32));
        assert!(!link.pk.contains(&token));
        assert_eq!(link.pk, pk_for(&token));
        assert_eq!(link.expires_at, 1_000);
    }
}
