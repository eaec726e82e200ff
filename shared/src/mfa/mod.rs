//! Two-factor authentication: TOTP with backup codes. [`enrolment`] turns it on and off, [`challenge`] is what
//! every first-factor sign-in of an account with it on answers instead of tokens, and how a challenge is answered.
//!
//! Every check of a code spends the account's password backoff ([`crate::backoff`]) first, so a thief holding one
//! factor gets no more guesses at the other than at a password; and every right code is spent by a conditional
//! write, so it works once however many requests race.

pub mod backup_codes;
pub mod challenge;
pub mod data_key;
pub mod enrolment;
pub mod totp;

use crate::clock::UnixTime;
use crate::store::second_factors::{Proof, SecondFactors};
use crate::store::users::User;
use crate::Error;
use data_key::DataKeys;

/// The second factors `user` can answer a challenge with (empty when two-factor authentication is off).
pub fn methods(user: &User, factors: Option<&SecondFactors>) -> Vec<&'static str> {
    if user.mfa_enabled_at.is_none() {
        return Vec::new();
    }
    let mut methods = vec!["totp"];
    if factors.is_none_or(|f| !f.backup_codes.is_empty()) {
        methods.push("backup_code");
    }
    if user.passkey_count > 0 {
        methods.push("passkey");
    }
    methods
}

/// The data keys that open `factors`.
pub(crate) async fn keys_for(
    state: &crate::State,
    factors: &SecondFactors,
    now: UnixTime,
) -> Result<std::sync::Arc<DataKeys>, Error> {
    state
        .mfa_keys
        .get_with(&[factors.totp_key_version, factors.backup_key_version], now)
        .await
}

/// What a submitted code proves against `factors`, or `None` when it proves nothing: a TOTP code of a step not yet
/// accepted, or an unused backup code (only when `backup_codes_count`). Nothing is spent here.
pub(crate) fn check_code(
    keys: &DataKeys,
    factors: &SecondFactors,
    code: &str,
    backup_codes_count: bool,
    now: UnixTime,
) -> Result<Option<Proof>, Error> {
    if backup_codes::is_totp_shaped(code) {
        let secret = keys.open(&factors.sealed_totp(), &factors.user_id)?;
        return Ok(totp::matching_step(&secret, code, now)
            .filter(|step| *step > factors.last_step)
            .map(|step| Proof::Totp { step }));
    }
    let Some(canonical) = backup_codes::normalize(code).filter(|_| backup_codes_count) else {
        return Ok(None);
    };
    let hash = keys.mac(factors.backup_key_version, canonical.as_bytes())?;
    // A set lookup by keyed hash: the hash is not secret without the key, so a plain comparison leaks nothing.
    Ok(factors
        .backup_codes
        .iter()
        .any(|stored| crate::secret::ct_eq(stored, &hash))
        .then_some(Proof::BackupCode { hash }))
}

/// A code field: present, at most 64 bytes (a longer one is no code and costs nothing to refuse).
pub fn check_code_field(code: &str) -> Result<&str, Error> {
    if code.is_empty() || code.len() > 64 {
        return Err(Error::InvalidCode);
    }
    Ok(code)
}
