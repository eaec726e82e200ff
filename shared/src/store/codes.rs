//! Emailed one-time codes (`EMAIL#<email>` / `CODE#<purpose>`): 6 digits, hashed, 10 minutes, 5 tries.

use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::users::email_pk;
use super::{built, decode, encode, is_condition_failure, key, n, s, Store};
use crate::clock::UnixTime;
use crate::email::Email;
use crate::{secret, Error};

/// How long a code lives.
pub const CODE_TTL_SECONDS: i64 = 600;
/// Wrong tries after which a code is dead.
pub const MAX_ATTEMPTS: i64 = 5;

/// What a code is for. A code only redeems for its own purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proving the address at registration.
    Register,
    /// Resetting a forgotten password.
    PasswordReset,
    /// Logging in without a password.
    Login,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::PasswordReset => "reset",
            Self::Login => "login",
        }
    }
}

/// A stored code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Code {
    pk: String,
    sk: String,
    /// The account the code acts on.
    pub user_id: String,
    code_hash: String,
    salt: String,
    /// Tries so far, counting the one in progress.
    pub attempts: i64,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds; also the TTL attribute.
    pub expires_at: UnixTime,
}

fn code_sk(purpose: Purpose) -> String {
    format!("CODE#{}", purpose.as_str())
}

fn hash(purpose: Purpose, email: &Email, salt: &str, code: &str) -> String {
    secret::sha256_b64(&[
        b"code",
        purpose.as_str().as_bytes(),
        email.as_str().as_bytes(),
        salt.as_bytes(),
        code.as_bytes(),
    ])
}

/// A new code for `email`, and its plaintext to email. Storing it replaces any earlier code of that purpose.
pub fn issue(email: &Email, purpose: Purpose, user_id: &str, now: UnixTime) -> (Code, String) {
    let plaintext = secret::six_digit_code();
    let salt = secret::random_b64(16);
    let code = Code {
        pk: email_pk(email),
        sk: code_sk(purpose),
        user_id: user_id.to_owned(),
        code_hash: hash(purpose, email, &salt, &plaintext),
        salt,
        attempts: 0,
        created_at: now,
        expires_at: now + CODE_TTL_SECONDS,
    };
    (code, plaintext)
}

/// Stores a code, replacing any earlier one of the same purpose.
pub async fn store(store: &Store, code: &Code) -> Result<(), Error> {
    store.put(code).await
}

/// A transaction item that stores a code.
pub(crate) fn store_item(store: &Store, code: &Code) -> Result<TransactWriteItem, Error> {
    let put = Put::builder().table_name(store.table()).set_item(Some(encode(code)?));
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// Whether a presented code has the only shape a code can have.
pub fn is_well_formed(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a presented code. Every try, right or wrong, first spends one attempt in a conditional write, so no
/// more than five guesses are ever compared, however many arrive at once. One round trip.
///
/// The returned code must still be consumed with [`consume_item`] in the transaction that acts on it.
pub async fn check(
    store: &Store,
    email: &Email,
    purpose: Purpose,
    presented: &str,
    now: UnixTime,
) -> Result<Code, Error> {
    if !is_well_formed(presented) {
        return Err(Error::InvalidCode);
    }
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&email_pk(email), &code_sk(purpose))))
        .update_expression("SET attempts = attempts + :one")
        .condition_expression("attribute_exists(pk) AND attempts < :max AND expires_at > :now")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":max", n(MAX_ATTEMPTS))
        .expression_attribute_values(":now", n(now))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    let item = match result {
        Ok(output) => output.attributes.unwrap_or_default(),
        Err(err) if is_condition_failure(&err) => return Err(Error::InvalidCode),
        Err(err) => return Err(Error::dependency("dynamodb UpdateItem", err)),
    };
    let code: Code = decode(item)?;
    if secret::ct_eq(&code.code_hash, &hash(purpose, email, &code.salt, presented)) {
        Ok(code)
    } else {
        Err(Error::InvalidCode)
    }
}

/// A transaction item that deletes a checked code, so it can be used once only.
pub(crate) fn consume_item(store: &Store, code: &Code) -> Result<TransactWriteItem, Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&code.pk, &code.sk)))
        .condition_expression("code_hash = :hash")
        .expression_attribute_values(":hash", s(&code.code_hash));
    Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_hash_per_purpose_email_and_salt() {
        let email = Email::parse("a@example.com").unwrap();
        let (code, plaintext) = issue(&email, Purpose::Register, "u", 100);
        assert_eq!(code.expires_at, 700);
        assert_eq!(code.code_hash, hash(Purpose::Register, &email, &code.salt, &plaintext));
        assert_ne!(
            code.code_hash,
            hash(Purpose::PasswordReset, &email, &code.salt, &plaintext)
        );
        let other = Email::parse("b@example.com").unwrap();
        assert_ne!(code.code_hash, hash(Purpose::Register, &other, &code.salt, &plaintext));
        assert!(!encode(&code)
            .unwrap()
            .values()
            .any(|v| v.as_s().is_ok_and(|s| s == &plaintext)));
    }

    #[test]
    fn only_six_digits_are_well_formed() {
        assert!(is_well_formed("012345"));
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "12 345"] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }
}
