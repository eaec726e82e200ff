//! A user's second factors (`USER#<id>` / `MFA`): the TOTP secret, sealed, the last TOTP step accepted, and the
//! backup codes' keyed hashes; and a pending TOTP enrolment (`USER#<id>` / `MFA_PENDING`), which expires.
//! Every use of a factor is a conditional write, so a code is accepted at most once however many requests race.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, encode, expiry_bucket, key, n, s, Store};
use crate::clock::UnixTime;
use crate::mfa::data_key::Sealed;
use crate::Error;

/// How long a setup waits for its enabling code.
pub const PENDING_TTL_SECONDS: i64 = 600;

const FACTORS_SK: &str = "MFA";
const PENDING_SK: &str = "MFA_PENDING";

fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// The second factors of an account with two-factor authentication on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondFactors {
    pk: String,
    sk: String,
    /// The owner.
    pub user_id: String,
    /// The TOTP secret sealed with the data key (the owner's id as associated data).
    pub totp_secret: String,
    /// The data-key version that sealed it.
    pub totp_key_version: u32,
    /// The last TOTP step accepted; a code of this step or an earlier one is refused.
    pub last_step: i64,
    /// Keyed hashes of the unused backup codes (a string set: a use deletes one hash, conditionally).
    #[serde(with = "serde_dynamo::string_set", default, skip_serializing_if = "Vec::is_empty")]
    pub backup_codes: Vec<String>,
    /// The data-key version of those hashes.
    pub backup_key_version: u32,
    /// Unix seconds.
    pub enabled_at: UnixTime,
    /// Unix seconds.
    pub updated_at: UnixTime,
}

impl SecondFactors {
    /// A new set: the enrolled secret, the step of the code that enabled it, and the backup codes' hashes.
    pub fn new(
        user_id: &str,
        totp: &Sealed,
        step: i64,
        backup_codes: Vec<String>,
        backup_key_version: u32,
        now: UnixTime,
    ) -> Self {
        Self {
            pk: user_pk(user_id),
            sk: FACTORS_SK.to_owned(),
            user_id: user_id.to_owned(),
            totp_secret: totp.ciphertext.clone(),
            totp_key_version: totp.version,
            last_step: step,
            backup_codes,
            backup_key_version,
            enabled_at: now,
            updated_at: now,
        }
    }

    /// The sealed TOTP secret.
    pub fn sealed_totp(&self) -> Sealed {
        Sealed {
            version: self.totp_key_version,
            ciphertext: self.totp_secret.clone(),
        }
    }
}

/// A TOTP secret shown by setup and waiting for its first code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingTotp {
    pk: String,
    sk: String,
    /// The owner.
    pub user_id: String,
    /// The session that ran setup: only it may finish the enrolment.
    pub session_id: String,
    /// A random id of this setup, so that finishing it cannot delete a newer one.
    pub setup_id: String,
    /// The secret, sealed.
    pub totp_secret: String,
    /// The data-key version that sealed it.
    pub totp_key_version: u32,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    pub expiry_bucket: i64,
}

impl PendingTotp {
    /// A pending enrolment of `sealed` for `user_id`, started by `session_id`, for ten minutes.
    pub fn new(user_id: &str, session_id: &str, sealed: &Sealed, now: UnixTime) -> Self {
        let expires_at = now + PENDING_TTL_SECONDS;
        Self {
            pk: user_pk(user_id),
            sk: PENDING_SK.to_owned(),
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
            setup_id: crate::secret::random_b64(16),
            totp_secret: sealed.ciphertext.clone(),
            totp_key_version: sealed.version,
            created_at: now,
            expires_at,
            expiry_bucket: expiry_bucket(expires_at),
        }
    }

    /// The sealed secret.
    pub fn sealed(&self) -> Sealed {
        Sealed {
            version: self.totp_key_version,
            ciphertext: self.totp_secret.clone(),
        }
    }
}

/// The key of a user's second-factor item.
pub(crate) fn factors_key(user_id: &str) -> super::Item {
    key(&user_pk(user_id), FACTORS_SK)
}

/// Reads a user's second factors.
pub async fn get(store: &Store, user_id: &str) -> Result<Option<SecondFactors>, Error> {
    store.get(&user_pk(user_id), FACTORS_SK).await
}

/// Stores a pending enrolment, replacing any earlier one.
pub async fn put_pending(store: &Store, pending: &PendingTotp) -> Result<(), Error> {
    store.put(pending).await
}

/// Reads the user's pending enrolment, if one exists and has not expired.
pub async fn get_pending(store: &Store, user_id: &str, now: UnixTime) -> Result<Option<PendingTotp>, Error> {
    Ok(store
        .get::<PendingTotp>(&user_pk(user_id), PENDING_SK)
        .await?
        .filter(|p| p.expires_at > now))
}

/// Transaction items that turn an enrolment into the account's factors: the factors (only if none exist) and the
/// pending item's deletion (only if it is still the one read).
pub(crate) fn enable_items(
    store: &Store,
    factors: &SecondFactors,
    pending: &PendingTotp,
) -> Result<Vec<TransactWriteItem>, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(factors)?))
        .condition_expression("attribute_not_exists(pk)");
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&pending.pk, &pending.sk)))
        .condition_expression("setup_id = :setup")
        .expression_attribute_values(":setup", s(&pending.setup_id));
    Ok(vec![
        TransactWriteItem::builder().put(built(put.build())?).build(),
        TransactWriteItem::builder().delete(built(delete.build())?).build(),
    ])
}

/// Which factor a right code was, as the write that spends it needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A TOTP code of this step.
    Totp {
        /// The step the code belongs to.
        step: i64,
    },
    /// A backup code with this keyed hash.
    BackupCode {
        /// The code's hash, as stored.
        hash: String,
    },
}

impl Proof {
    /// The `amr` value (RFC 8176 names `otp`; keygate uses that for emailed codes, so these are named as such).
    pub fn amr(&self) -> &'static str {
        match self {
            Self::Totp { .. } => "totp",
            Self::BackupCode { .. } => "backup_code",
        }
    }

    /// The condition that spends the proof: a later step than any accepted, or a hash still in the set.
    fn condition(&self, update: UpdateBuilder) -> (UpdateBuilder, &'static str) {
        match self {
            Self::Totp { step } => (
                update.expression_attribute_values(":step", n(*step)),
                "attribute_exists(pk) AND last_step < :step",
            ),
            Self::BackupCode { hash } => (
                update
                    .expression_attribute_values(":hash", s(hash))
                    .expression_attribute_values(":hashes", AttributeValue::Ss(vec![hash.clone()])),
                "attribute_exists(pk) AND contains(backup_codes, :hash)",
            ),
        }
    }
}

type UpdateBuilder = aws_sdk_dynamodb::types::builders::UpdateBuilder;

/// A transaction item that spends `proof`: records the TOTP step, or deletes the backup code's hash. It fails
/// when the step was already accepted or the code already used, so of two requests with one code one wins.
pub(crate) fn spend_item(
    store: &Store,
    user_id: &str,
    proof: &Proof,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(factors_key(user_id)))
        .expression_attribute_values(":now", n(now));
    let (update, condition) = proof.condition(update);
    let expression = match proof {
        Proof::Totp { .. } => "SET last_step = :step, updated_at = :now",
        Proof::BackupCode { .. } => "SET updated_at = :now DELETE backup_codes :hashes",
    };
    Ok(TransactWriteItem::builder()
        .update(built(
            update
                .update_expression(expression)
                .condition_expression(condition)
                .build(),
        )?)
        .build())
}

/// A transaction item that replaces the backup codes, spending the TOTP step that authorised it.
pub(crate) fn replace_backup_codes_item(
    store: &Store,
    user_id: &str,
    step: i64,
    hashes: Vec<String>,
    key_version: u32,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(factors_key(user_id)))
        .update_expression(
            "SET last_step = :step, backup_codes = :codes, backup_key_version = :version, updated_at = :now",
        )
        .condition_expression("attribute_exists(pk) AND last_step < :step")
        .expression_attribute_values(":step", n(step))
        .expression_attribute_values(":codes", AttributeValue::Ss(hashes))
        .expression_attribute_values(":version", n(i64::from(key_version)))
        .expression_attribute_values(":now", n(now));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// Transaction items that delete the factors and any pending enrolment, whatever they hold (an administrator's
/// reset).
pub(crate) fn remove_all_items(store: &Store, user_id: &str) -> Result<Vec<TransactWriteItem>, Error> {
    [FACTORS_SK, PENDING_SK]
        .into_iter()
        .map(|sk| {
            let delete = Delete::builder()
                .table_name(store.table())
                .set_key(Some(key(&user_pk(user_id), sk)));
            Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
        })
        .collect()
}

/// A transaction item that deletes the factors, only if `proof` is still unspent (disabling needs a current
/// factor, and spends it).
pub(crate) fn remove_item(store: &Store, user_id: &str, proof: &Proof) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(factors_key(user_id)));
    let delete = match proof {
        Proof::Totp { step } => delete
            .condition_expression("attribute_exists(pk) AND last_step < :step")
            .expression_attribute_values(":step", n(*step)),
        Proof::BackupCode { hash } => delete
            .condition_expression("attribute_exists(pk) AND contains(backup_codes, :hash)")
            .expression_attribute_values(":hash", s(hash)),
    };
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}
