//! Turning two-factor authentication on and off from a signed-in session, and reading where it stands.

use serde::Serialize;

use super::{backup_codes, check_code, methods, totp};
use crate::account::notify_owner as notify;
use crate::account::REAUTHENTICATION_WINDOW_SECONDS;
use crate::backoff;
use crate::clock::{rfc3339, UnixTime};
use crate::mail::Mail;
use crate::store::events::{self, Event, Kind};
use crate::store::second_factors::{self, PendingTotp, Proof, SecondFactors};
use crate::store::sessions::{self, Session};
use crate::store::users::{self, AccountKind, User};
use crate::{Error, State};

/// Where two-factor authentication stands for an account.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Whether sign-ins need a second factor.
    pub enabled: bool,
    /// RFC 3339, when it was turned on.
    pub enabled_at: Option<String>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
    /// The second factors a challenge accepts.
    pub methods: Vec<&'static str>,
}

/// The status of `user`'s second factors. One round trip when two-factor authentication is on, none when off.
pub async fn status(state: &State, user: &User) -> Result<Status, Error> {
    let factors = match user.mfa_enabled_at {
        Some(_) => second_factors::get(&state.store, &user.id).await?,
        None => None,
    };
    Ok(Status {
        enabled: user.mfa_enabled_at.is_some(),
        enabled_at: user.mfa_enabled_at.map(rfc3339),
        backup_codes_remaining: factors.as_ref().map_or(0, |f| f.backup_codes.len()),
        methods: methods(user, factors.as_ref()),
    })
}

/// A new, pending TOTP secret, as an authenticator app takes it.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// The secret, base32 (to type in).
    pub secret: String,
    /// The `otpauth://` URI (to draw as a QR code).
    pub otpauth_uri: String,
    /// Seconds left to enable it.
    pub expires_in: i64,
}

/// Begins enrolment: a new secret, sealed and pending for ten minutes, replacing any earlier setup. Needs a
/// sign-in at most five minutes old, so that a stolen session cannot tie the account to the thief's authenticator;
/// refused while two-factor authentication is on (409), and for service accounts, which have no interactive
/// sign-in to protect. One round trip (the pending item), plus one Secrets Manager read on a cold data key.
pub async fn setup(state: &State, user: &User, session: &Session, now: UnixTime) -> Result<Setup, Error> {
    if user.kind != AccountKind::Individual {
        return Err(Error::InsufficientRole(
            "Service accounts sign in with a secret and have no second factor.",
        ));
    }
    if user.mfa_enabled_at.is_some() {
        return Err(Error::MfaAlreadyEnabled);
    }
    if now - session.created_at > REAUTHENTICATION_WINDOW_SECONDS {
        return Err(Error::ReauthenticationRequired);
    }
    let secret = totp::new_secret();
    let keys = state.mfa_keys.get(now).await?;
    let sealed = keys.seal(&secret, &user.id)?;
    let otpauth_uri = totp::otpauth_uri(&secret, &state.config.totp_issuer, &user.email)
        .ok_or_else(|| Error::dependency("building the otpauth URI", std::io::Error::other("rejected")))?;
    second_factors::put_pending(&state.store, &PendingTotp::new(&user.id, &session.id, &sealed, now)).await?;
    Ok(Setup {
        secret: totp::base32(&secret),
        otpauth_uri,
        expires_in: second_factors::PENDING_TTL_SECONDS,
    })
}

/// The backup codes, shown once.
#[derive(Debug, Serialize)]
pub struct BackupCodes {
    /// Ten single-use codes.
    pub backup_codes: Vec<String>,
}

/// New backup codes and their hashes under the current data key version.
fn new_backup_codes(keys: &super::data_key::DataKeys) -> Result<(Vec<String>, Vec<String>), Error> {
    let codes = backup_codes::generate();
    let hashes = codes
        .iter()
        .map(|code| {
            let canonical = backup_codes::normalize(code).unwrap_or_default();
            keys.mac(keys.current_version(), canonical.as_bytes())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((codes, hashes))
}

/// Finishes enrolment with a code from the pending secret, from the session that ran setup: the secret becomes
/// the account's (the code's step counted as used), ten backup codes are made, every other session of the account
/// ends (they signed in with one factor), the `mfa_enabled` event is recorded with them, and the owner is told by
/// email. A wrong code spends the backoff as a wrong second factor does ([`backoff::claim_second_factor`]).
/// Four round trips in two round-trip times (the two backoff claims and the pending secret concurrently, one
/// transaction), and one SQS call.
pub async fn enable(
    state: &State,
    user: &User,
    session: &Session,
    code: &str,
    now: UnixTime,
) -> Result<BackupCodes, Error> {
    let store = &state.store;
    if user.mfa_enabled_at.is_some() {
        return Err(Error::MfaAlreadyEnabled);
    }
    let code = super::check_code_field(code)?;
    let backoff_key = user.backoff_key();
    let (attempt, pending) = tokio::join!(
        backoff::claim_second_factor(store, &backoff_key, &user.id, now),
        second_factors::get_pending(store, &user.id, now)
    );
    let attempt = attempt?;
    let pending = match pending {
        Ok(Some(pending)) if pending.session_id == session.id => pending,
        Ok(_) => {
            attempt.release(store).await?;
            return Err(Error::MfaSetupRequired);
        }
        Err(err) => {
            attempt.release(store).await?;
            return Err(err);
        }
    };
    let opened = match state.mfa_keys.get_with(&[pending.totp_key_version], now).await {
        Ok(keys) => keys.open(&pending.sealed(), &user.id).map(|secret| (keys, secret)),
        Err(err) => Err(err),
    };
    let (keys, secret) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            attempt.release(store).await?;
            return Err(err);
        }
    };
    let Some(step) = totp::matching_step(&secret, code, now) else {
        crate::telemetry::mfa_failure();
        attempt.failed(store, now).await?;
        return Err(Error::InvalidCode);
    };
    let (codes, hashes) = new_backup_codes(&keys)?;
    let factors = SecondFactors::new(&user.id, &pending.sealed(), step, hashes, keys.current_version(), now);
    let new_epoch = user.session_epoch + 1;
    let mut items = second_factors::enable_items(store, &factors, &pending)?;
    items.push(users::enable_second_factor_item(store, user, new_epoch, now)?);
    items.push(sessions::move_to_epoch_item(store, &session.id, new_epoch)?);
    items.extend(attempt.succeeded_items(store)?);
    let event = Event::new(Kind::MfaEnabled, user, now, state.config.event_retention).in_session(&session.id);
    items.push(events::put_item(store, &event)?);
    if !store.transact_racing(items).await? {
        return Err(Error::Conflict(
            "Two-factor authentication changed meanwhile; start again.",
        ));
    }
    notify(state, user, Mail::TwoFactorEnabled).await;
    Ok(BackupCodes { backup_codes: codes })
}

/// Checks a current factor for a change to the factors themselves (disable, regenerate): the backoff claims and
/// the factors concurrently, then the code. A wrong code sets the backoff's wait; a request refused before its
/// code was judged gives its claims back. Three round trips in one round-trip time, plus the waits' writes after a
/// wrong code.
async fn prove_current_factor(
    state: &State,
    user: &User,
    code: &str,
    backup_codes_count: bool,
    now: UnixTime,
) -> Result<(SecondFactors, Proof, backoff::SecondFactorAttempt), Error> {
    let store = &state.store;
    if user.mfa_enabled_at.is_none() {
        return Err(Error::MfaNotEnabled);
    }
    let code = super::check_code_field(code)?;
    let backoff_key = user.backoff_key();
    let (attempt, factors) = tokio::join!(
        backoff::claim_second_factor(store, &backoff_key, &user.id, now),
        second_factors::get(store, &user.id)
    );
    let attempt = attempt?;
    let factors = match factors {
        Ok(Some(factors)) => factors,
        Ok(None) => {
            attempt.release(store).await?;
            return Err(Error::MfaNotEnabled);
        }
        Err(err) => {
            attempt.release(store).await?;
            return Err(err);
        }
    };
    let checked = match super::keys_for(state, &factors, now).await {
        Ok(keys) => check_code(&keys, &factors, code, backup_codes_count, now),
        Err(err) => Err(err),
    };
    match checked {
        Ok(Some(proof)) => Ok((factors, proof, attempt)),
        Ok(None) => {
            crate::telemetry::mfa_failure();
            attempt.failed(store, now).await?;
            Err(Error::InvalidCode)
        }
        Err(err) => {
            attempt.release(store).await?;
            Err(err)
        }
    }
}

/// Turns two-factor authentication off with a current TOTP code or an unused backup code (ASVS 7.5.1), from session
/// `session_id`, deleting the secret and the backup codes, recording the `mfa_disabled` event (with the factor that
/// proved it) with them, and tells the owner. Other sessions stay (`DELETE /v1/auth/sessions` ends them). Four
/// round trips in two round-trip times (the claims and the factors concurrently, one transaction), and one SQS
/// call.
pub async fn disable(state: &State, user: &User, session_id: &str, code: &str, now: UnixTime) -> Result<(), Error> {
    let store = &state.store;
    let (_, proof, attempt) = prove_current_factor(state, user, code, true, now).await?;
    let event = Event::new(Kind::MfaDisabled, user, now, state.config.event_retention)
        .in_session(session_id)
        .with("method", proof.amr());
    let mut items = vec![
        second_factors::remove_item(store, &user.id, &proof)?,
        users::disable_second_factor_item(store, &user.id, now)?,
    ];
    items.extend(attempt.succeeded_items(store)?);
    items.push(events::put_item(store, &event)?);
    if !store.transact_racing(items).await? {
        return Err(Error::InvalidCode);
    }
    notify(state, user, Mail::TwoFactorDisabled).await;
    Ok(())
}

/// Replaces the backup codes, authorised by a current TOTP code (a backup code cannot mint new ones), from session
/// `session_id`, recording the `backup_codes_regenerated` event with them, and tells the owner. Four round trips in
/// two round-trip times, and one SQS call.
pub async fn regenerate_backup_codes(
    state: &State,
    user: &User,
    session_id: &str,
    code: &str,
    now: UnixTime,
) -> Result<BackupCodes, Error> {
    let store = &state.store;
    let (_, proof, attempt) = prove_current_factor(state, user, code, false, now).await?;
    let Proof::Totp { step } = proof else {
        crate::telemetry::mfa_failure();
        attempt.failed(store, now).await?;
        return Err(Error::InvalidCode);
    };
    let keys = state.mfa_keys.get(now).await?;
    let (codes, hashes) = new_backup_codes(&keys)?;
    let mut items = vec![second_factors::replace_backup_codes_item(
        store,
        &user.id,
        step,
        hashes,
        keys.current_version(),
        now,
    )?];
    items.extend(attempt.succeeded_items(store)?);
    let event = Event::new(Kind::BackupCodesRegenerated, user, now, state.config.event_retention)
        .in_session(session_id)
        .with("count", codes.len().to_string());
    items.push(events::put_item(store, &event)?);
    if !store.transact_racing(items).await? {
        return Err(Error::InvalidCode);
    }
    notify(state, user, Mail::BackupCodesRegenerated).await;
    Ok(BackupCodes { backup_codes: codes })
}
