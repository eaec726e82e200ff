//! Second-factor challenges (`MFACHALLENGE#<sha256 of token>` / `CHALLENGE`): what a right first factor leaves
//! when the account has two-factor authentication on. 256-bit, stored hashed, single use, five minutes, bound to
//! the user, its session epoch, the first factor and the requested database, and dead after five wrong codes.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, conditional, encode, expiry_bucket, key, n, Store};
use crate::clock::UnixTime;
use crate::store::users::User;
use crate::{secret, Error};

/// How long a challenge can be answered.
pub const CHALLENGE_TTL_SECONDS: i64 = 300;
/// Wrong codes that kill a challenge.
pub const MAX_WRONG_CODES: i64 = 5;
/// Bytes of randomness in a challenge token.
const TOKEN_BYTES: usize = 32;

const SK: &str = "CHALLENGE";

/// What answering the challenge yields: the first factor's own answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A session and its token response.
    Session,
    /// A root token (the root login): no session, no refresh token.
    Root,
}

/// A stored challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    pk: String,
    sk: String,
    /// The account that passed its first factor.
    pub user_id: String,
    /// Its backoff key, so the answer's claim can run beside the reads.
    pub backoff_key: String,
    /// The account's session epoch then: anything that ends its sessions (a reset, a disable) ends this too.
    pub epoch: i64,
    /// The first factor's `amr`.
    pub amr: Vec<String>,
    /// What the answer yields.
    pub outcome: Outcome,
    /// The database the sign-in asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Wrong codes so far.
    #[serde(default)]
    pub wrong: i64,
    /// Whether the optional breach check found the first factor's password in a known breach: the tokens the
    /// answer yields say so, as a password login's would.
    #[serde(default)]
    pub password_breached: bool,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    pub expiry_bucket: i64,
}

/// The hash a challenge is stored under, which a passkey ceremony started for the challenge records.
pub fn token_hash(token: &str) -> String {
    secret::sha256_b64(&[b"mfa-challenge", token.as_bytes()])
}

fn pk_for(token: &str) -> String {
    format!("MFACHALLENGE#{}", token_hash(token))
}

impl Challenge {
    /// A new challenge for `user`, and its token.
    pub fn issue(user: &User, amr: &[&str], outcome: Outcome, db: Option<&str>, now: UnixTime) -> (Self, String) {
        let token = secret::random_b64(TOKEN_BYTES);
        let expires_at = now + CHALLENGE_TTL_SECONDS;
        let challenge = Self {
            pk: pk_for(&token),
            sk: SK.to_owned(),
            user_id: user.id.clone(),
            backoff_key: user.backoff_key(),
            epoch: user.session_epoch,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            outcome,
            db: db.map(str::to_owned),
            wrong: 0,
            password_breached: false,
            created_at: now,
            expires_at,
            expiry_bucket: expiry_bucket(expires_at),
        };
        (challenge, token)
    }
}

/// A transaction item that stores a new challenge.
pub(crate) fn create_item(store: &Store, challenge: &Challenge) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(challenge)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// The live challenge a token names: `None` for a token of the wrong shape (no read), an unknown, used or expired
/// one, or one with five wrong codes. One round trip.
pub async fn get(store: &Store, token: &str, now: UnixTime) -> Result<Option<Challenge>, Error> {
    if !secret::is_b64_of_len(token, TOKEN_BYTES) {
        return Ok(None);
    }
    Ok(store
        .get::<Challenge>(&pk_for(token), SK)
        .await?
        .filter(|c| c.expires_at > now && c.wrong < MAX_WRONG_CODES))
}

/// A transaction item that uses the challenge up: it fails if another answer used it first, or if wrong codes
/// killed it meanwhile.
pub(crate) fn consume_item(store: &Store, challenge: &Challenge) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&challenge.pk, SK)))
        .condition_expression("attribute_exists(pk) AND wrong < :max")
        .expression_attribute_values(":max", n(MAX_WRONG_CODES));
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}

/// Records that the challenge's password is in a known breach (the check runs beside the challenge's write). One
/// round trip, made only for a breached password.
pub async fn mark_password_breached(store: &Store, challenge: &Challenge) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&challenge.pk, SK)))
        .update_expression("SET password_breached = :true")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}

/// Counts a wrong code against the challenge. One round trip; a challenge already gone is left alone.
pub async fn count_wrong(store: &Store, challenge: &Challenge) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&challenge.pk, SK)))
        .update_expression("ADD wrong :one")
        .condition_expression("attribute_exists(pk) AND wrong < :max")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":max", n(MAX_WRONG_CODES))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}
