//! Emailed one-time codes (`EMAIL#<email>` / `CODE#<purpose>`): 6 digits, hashed, 10 minutes, 5 tries.

use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::rate_limits::{self, Budget};
use super::users::email_pk;
use super::{built, decode, encode, expiry_bucket, is_condition_failure, key, n, s, Store};
use crate::clock::UnixTime;
use crate::email::Email;
use crate::{secret, Error};

/// How long a code lives.
pub const CODE_TTL_SECONDS: i64 = 600;
/// Wrong tries after which a code is dead.
pub const MAX_ATTEMPTS: i64 = 5;
/// The window of the per-address cap on wrong guesses, across re-sent codes.
pub const GUESS_WINDOW_SECONDS: i64 = 86_400;

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
    /// Expiry bucket (DESIGN §6).
    #[serde(default)]
    pub expiry_bucket: i64,
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
        expiry_bucket: expiry_bucket(now + CODE_TTL_SECONDS),
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

/// A code that matched, with the guess it spent, to settle in the transaction that acts on it.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The stored code.
    pub code: Code,
    email: String,
    purpose: Purpose,
    guess_window: UnixTime,
}

impl Checked {
    /// The account the code acts on.
    pub fn user_id(&self) -> &str {
        &self.code.user_id
    }
}

fn guess_budget<'a>(email: &'a str, purpose: Purpose, window_start: UnixTime, cap: u32) -> Budget<'a> {
    Budget {
        rule: match purpose {
            Purpose::Register => "code-guess-register",
            Purpose::PasswordReset => "code-guess-reset",
            Purpose::Login => "code-guess-login",
        },
        subject: email,
        window_start,
        window_end: window_start + GUESS_WINDOW_SECONDS,
        limit: cap,
        min_interval: 0,
    }
}

/// Checks a presented code. Every try, right or wrong, first spends one attempt of the code and one guess of the
/// address's daily budget for this purpose (`guesses_per_day`, across re-sent codes), each with a conditional
/// write, so no more guesses are ever compared than both allow, however many arrive at once. A right code gives
/// its guess back when it is consumed ([`consume_items`]). Past the daily budget the answer is 429 for this
/// address and purpose, right code or not; the other purposes still work. One round-trip time (two concurrent
/// writes).
pub async fn check(
    store: &Store,
    email: &Email,
    purpose: Purpose,
    presented: &str,
    guesses_per_day: u32,
    now: UnixTime,
) -> Result<Checked, Error> {
    if !is_well_formed(presented) {
        return Err(Error::InvalidCode);
    }
    let (window_start, _) = crate::rate_limit::window_bounds(now, GUESS_WINDOW_SECONDS);
    let budget = guess_budget(email.as_str(), purpose, window_start, guesses_per_day);
    let attempt = store
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
        .send();
    let (spent, attempt) = tokio::join!(rate_limits::spend(store, &budget, now), attempt);
    let refused = spent?;
    let item = match attempt {
        Ok(output) => output.attributes.unwrap_or_default(),
        Err(err) if is_condition_failure(&err) => {
            // No live code: nothing was guessed, so the guess goes back. Otherwise anyone could spend an
            // address's daily budget without a code ever being sent.
            if refused.is_none() {
                rate_limits::refund(store, &budget).await?;
            }
            return Err(Error::InvalidCode);
        }
        Err(err) => return Err(Error::dependency("dynamodb UpdateItem", err)),
    };
    if let Some(retry_after) = refused {
        return Err(crate::rate_limit::refused(retry_after));
    }
    let code: Code = decode(item)?;
    if secret::ct_eq(&code.code_hash, &hash(purpose, email, &code.salt, presented)) {
        Ok(Checked {
            code,
            email: email.as_str().to_owned(),
            purpose,
            guess_window: window_start,
        })
    } else {
        Err(Error::InvalidCode)
    }
}

/// Transaction items that delete a checked code, so it can be used once only, and give back the guess it spent.
pub(crate) fn consume_items(
    store: &Store,
    checked: &Checked,
    guesses_per_day: u32,
) -> Result<[TransactWriteItem; 2], Error> {
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&checked.code.pk, &checked.code.sk)))
        .condition_expression("code_hash = :hash")
        .expression_attribute_values(":hash", s(&checked.code.code_hash));
    let budget = guess_budget(&checked.email, checked.purpose, checked.guess_window, guesses_per_day);
    Ok([
        TransactWriteItem::builder().delete(built(delete.build())?).build(),
        rate_limits::refund_item(store, &budget)?,
    ])
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
