//! Ceremonies (`CEREMONY#<sha256 of id>` / `CEREMONY`): the server side of one `navigator.credentials` call, from
//! its options to its verification, or of one sign-in at an identity provider, from its `state` to its return. 256-bit id, stored hashed, five minutes (expiry checked in code),
//! single use: taking one is a conditional delete that returns it, and it only finishes the kind of request that
//! started it.

use aws_sdk_dynamodb::types::ReturnValue;
use serde::{Deserialize, Serialize};

use super::{decode, expiry_bucket, is_condition_failure, key, Store};
use crate::clock::UnixTime;
use crate::{secret, Error};

/// How long a ceremony can be finished.
pub const CEREMONY_TTL_SECONDS: i64 = 300;
/// Bytes of randomness in a ceremony id.
const ID_BYTES: usize = 32;
const SK: &str = "CEREMONY";

/// What started the ceremony, and so what may finish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Registering a passkey from a session.
    Register,
    /// Signing in with the passkeys of an email's account.
    Login,
    /// Signing in with whatever discoverable passkey the authenticator offers.
    Discoverable,
    /// Answering a second-factor challenge with a passkey.
    SecondFactor,
    /// A single sign-on at an identity provider (`state`, with its nonce and PKCE verifier).
    SsoSignIn,
    /// Linking an identity-provider account to the signed-in account that started it.
    SsoLink,
}

/// A stored ceremony.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ceremony {
    pk: String,
    sk: String,
    /// What started it.
    pub kind: Kind,
    /// webauthn-rs's ceremony state, JSON.
    pub state: String,
    /// The account it is for (empty for a discoverable sign-in, and for an address with no account).
    #[serde(default)]
    pub user_id: String,
    /// The session that started a registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The backoff key of a sign-in with an address: its attempts count against the address's backoff whether or
    /// not it has an account, as password attempts do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_key: Option<String>,
    /// The challenge token's hash of a second-factor ceremony.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    pub expiry_bucket: i64,
}

fn pk_for(id: &str) -> String {
    format!(
        "CEREMONY#{}",
        secret::sha256_b64(&[b"webauthn-ceremony", id.as_bytes()])
    )
}

impl Ceremony {
    /// A new ceremony and its id.
    pub fn new(kind: Kind, state: String, user_id: &str, now: UnixTime) -> (Self, String) {
        Self::lasting(kind, state, user_id, CEREMONY_TTL_SECONDS, now)
    }

    /// A new ceremony that can be finished for `ttl` seconds, and its id.
    pub fn lasting(kind: Kind, state: String, user_id: &str, ttl: i64, now: UnixTime) -> (Self, String) {
        let id = secret::random_b64(ID_BYTES);
        let expires_at = now + ttl;
        let ceremony = Self {
            pk: pk_for(&id),
            sk: SK.to_owned(),
            kind,
            state,
            user_id: user_id.to_owned(),
            session_id: None,
            backoff_key: None,
            challenge: None,
            created_at: now,
            expires_at,
            expiry_bucket: expiry_bucket(expires_at),
        };
        (ceremony, id)
    }
}

/// Stores a ceremony. One round trip.
pub async fn put(store: &Store, ceremony: &Ceremony) -> Result<(), Error> {
    store.put(ceremony).await
}

/// Takes a ceremony for good: deletes it and returns it if it existed, had not expired and was started by one of
/// `kinds`. Anything else is `None`; a ceremony of another kind is used up all the same. One round trip; none for
/// an id of the wrong shape.
pub async fn take(store: &Store, id: &str, kinds: &[Kind], now: UnixTime) -> Result<Option<Ceremony>, Error> {
    if !secret::is_b64_of_len(id, ID_BYTES) {
        return Ok(None);
    }
    let result = store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(&pk_for(id), SK)))
        .condition_expression("attribute_exists(pk)")
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    let old = match result {
        Ok(output) => output.attributes,
        Err(err) if is_condition_failure(&err) => None,
        Err(err) => return Err(Error::dependency("dynamodb DeleteItem", err)),
    };
    let Some(old) = old else {
        return Ok(None);
    };
    let ceremony: Ceremony = decode(old)?;
    Ok((ceremony.expires_at > now && kinds.contains(&ceremony.kind)).then_some(ceremony))
}
