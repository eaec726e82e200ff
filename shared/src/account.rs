//! The email/password account lifecycle: register, verify, login, change and reset the password.

use secrecy::SecretString;

use crate::backoff::{self, Gate};
use crate::clock::UnixTime;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::passwords::{self, Verified};
use crate::session::{self, TokenResponse};
use crate::store::codes::{self, Purpose};
use crate::store::login_failures;
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};
use crate::{rate_limit, Error, State};

/// Longest display or tenant name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Checks an optional display name or tenant name: trimmed, at most 100 characters, no control characters.
pub fn clean_name(raw: Option<&str>, field: &'static str) -> Result<Option<String>, Error> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(Error::InvalidField(format!(
            "{field} must be at most {MAX_NAME_CHARS} printable characters."
        )));
    }
    Ok(Some(name.to_owned()))
}

/// Bidirectional overrides make a name display as something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// A registration request, validated.
pub struct Registration {
    /// Address to register.
    pub email: Email,
    /// Chosen password, policy-checked.
    pub password: SecretString,
    /// Display name.
    pub name: Option<String>,
    /// Tenant name.
    pub tenant_name: Option<String>,
}

/// Registers an address, or re-sends for a pending one, and emails a code. For an address with a verified
/// account it emails a notice instead, so the answer never reveals which addresses have accounts.
/// Two round trips for a new address (marker read, transaction); three for an existing one. One SQS SendMessage.
pub async fn register(state: &State, registration: Registration, now: UnixTime) -> Result<(), Error> {
    // Hash first, whatever the path, so all paths cost the same argon2 run.
    let password_hash = passwords::hash(&registration.password).await?;
    let existing = users::find_by_email(&state.store, &registration.email).await?;
    let (pending, mut items) = match existing {
        Some(user) if user.email_verified => {
            return state.mailer.send(&registration.email, Mail::AlreadyRegistered).await;
        }
        Some(mut user) => {
            user.password_hash = password_hash;
            user.name = registration.name;
            user.tenant_name = registration.tenant_name;
            let items = vec![users::replace_pending_item(&state.store, &user, now)?];
            (user, items)
        }
        None => {
            let user = User::new(
                &registration.email,
                registration.name,
                registration.tenant_name,
                password_hash,
                now,
            );
            let items = users::create_items(&state.store, &user)?;
            (user, items)
        }
    };
    let (code, plaintext) = codes::issue(&registration.email, Purpose::Register, &pending.id, now);
    items.push(codes::store_item(&state.store, &code)?);
    if !state.store.transact(items).await? {
        // A concurrent registration or verification of the same address won; it sends its own email. A decoy
        // keeps this answer's calls the same as every other path's.
        tracing::info!("registration lost a race for the same address");
        return state.mailer.send(&registration.email, Mail::Decoy).await;
    }
    state
        .mailer
        .send(&registration.email, Mail::RegistrationCode { code: &plaintext })
        .await
}

/// Redeems a registration code: the account becomes verified and a session starts.
/// Three round trips: the code check, the user read, the transaction (consume code, verify, create session).
pub async fn verify_registration(
    state: &State,
    email: &Email,
    code: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    redeem_code_for_session(state, email, Purpose::Register, code, client, now).await
}

/// Redeems an emailed code of `purpose` (registration or login) and starts a session (amr `otp`). The code proves
/// the address, so an unverified account becomes verified in the same transaction.
/// Three round trips: the code check, the user read, the transaction (consume code, verify, create session,
/// forget failed logins).
pub async fn redeem_code_for_session(
    state: &State,
    email: &Email,
    purpose: Purpose,
    code: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let checked = codes::check(&state.store, email, purpose, code, now).await?;
    let mut user = users::get(&state.store, &checked.user_id)
        .await?
        .ok_or(Error::InvalidCode)?;
    user.email_verified = true;
    let (session, refresh) = Session::start(&user, &["otp"], client, state.config.refresh_token_ttl, now);
    let items = vec![
        codes::consume_item(&state.store, &checked)?,
        users::mark_verified_item(&state.store, &user.id, now)?,
        sessions::create_item(&state.store, &session)?,
        login_failures::clear_item(&state.store, email.as_str())?,
    ];
    if !state.store.transact(items).await? {
        return Err(Error::InvalidCode);
    }
    session::token_response(state, &user, &session, &refresh, now).await
}

/// Checks an email and password and starts a session. Unknown addresses cost the same argon2 run as known ones,
/// and count failures the same way. In backoff (see [`crate::backoff`]) an early attempt is refused before any
/// argon2 run, and a due one must first claim its slot, so parallel guesses gain nothing.
/// Four round trips when the password is right, in three round-trip times: the per-IP counter alongside one
/// BatchGetItem of the marker and the failure record, then the user, then the session; one more to clear
/// earlier failures, claim a backoff slot or upgrade an old hash.
pub async fn login(
    state: &State,
    email: &str,
    password: &SecretString,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    // The per-IP counter and the account lookup are independent reads: one round-trip time for both.
    let rule = state.config.rate_limits.verify_rule("login");
    let email = Email::parse(email).ok();
    let lookup = async {
        match &email {
            Some(email) => login_failures::account_and_failures(&state.store, email)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (limited, lookup) = tokio::join!(rate_limit::check_client_ip(&state.store, &rule, client, now), lookup);
    limited?;
    let (Some(email), Some((user_id, failures))) = (email, lookup?) else {
        // No account can have this address; still spend the same argon2 run.
        passwords::verify(password, None).await?;
        return Err(Error::InvalidCredentials);
    };
    match backoff::gate(failures.as_ref(), now) {
        Gate::Open => {}
        Gate::Due => {
            let seen = failures.clone().unwrap_or_default();
            if !login_failures::claim_attempt(&state.store, email.as_str(), &seen, now).await? {
                return Err(Error::RateLimited {
                    retry_after: backoff::delay_after(seen.failures).max(1),
                });
            }
        }
        Gate::Wait(seconds) => return Err(Error::RateLimited { retry_after: seconds }),
        Gate::Locked => return Err(Error::AccountLocked),
    }
    let user = match user_id {
        Some(id) => users::get(&state.store, &id).await?,
        None => None,
    };
    let verified = passwords::verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let user = match (user, verified) {
        (Some(user), Verified::Yes | Verified::YesRehash) => user,
        _ => {
            login_failures::record_failure(&state.store, email.as_str(), backoff::CEILING, now).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    if !user.email_verified {
        return Err(Error::EmailNotVerified);
    }
    if failures.is_some() {
        login_failures::clear(&state.store, email.as_str()).await?;
    }
    if verified == Verified::YesRehash {
        let upgraded = passwords::hash(password).await?;
        users::upgrade_password_hash(&state.store, &user, &upgraded).await?;
    }
    session::start(state, &user, &["pwd"], client, now).await
}

/// Changes the password of a signed-in user and revokes every other session of theirs, in one transaction.
/// One round trip (the transaction) after authentication, plus one SQS SendMessage (the notice).
pub async fn change_password(
    state: &State,
    user: &User,
    current_session_id: &str,
    current: &SecretString,
    new: &SecretString,
    now: UnixTime,
) -> Result<(), Error> {
    passwords::check_policy(new)?;
    if passwords::verify(current, Some(&user.password_hash)).await? == Verified::No {
        return Err(Error::WrongPassword);
    }
    let password_hash = passwords::hash(new).await?;
    let new_epoch = user.session_epoch + 1;
    let items = vec![
        users::set_password_item(&state.store, user, &password_hash, new_epoch, false, now)?,
        sessions::move_to_epoch_item(&state.store, current_session_id, new_epoch)?,
    ];
    if !state.store.transact(items).await? {
        return Err(Error::SessionRevoked);
    }
    let email = Email::parse(&user.email)?;
    state.mailer.send(&email, Mail::PasswordChanged).await
}

/// The whole of an "email me a code" request, shared by `otp/send` and `password-reset-request`: the per-IP and
/// per-address limits, then [`send_code`]. The answer is the same whether or not the address has an account.
/// Round trips: one IP counter, two address counters, then [`send_code`]'s one or two.
pub async fn request_code(
    state: &State,
    email: &Email,
    purpose: Purpose,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<(), Error> {
    let name = match purpose {
        Purpose::PasswordReset => "password-reset-request",
        Purpose::Login => "otp-send",
        Purpose::Register => "register",
    };
    rate_limit::check_send(&state.store, &state.config.rate_limits, name, client, email, now).await?;
    send_code(state, email, purpose, now).await
}

/// Emails a code of `purpose` (password reset or login) when the address has an account; queues a decoy
/// otherwise, so the caller's answer and its SQS call are the same either way. A new code replaces the previous
/// one of the same purpose.
/// One round trip for an unknown address (the marker), two for a known one (plus the code); one SQS SendMessage.
pub async fn send_code(state: &State, email: &Email, purpose: Purpose, now: UnixTime) -> Result<(), Error> {
    let Some(user_id) = users::id_for_email(&state.store, email).await? else {
        return state.mailer.send(email, Mail::Decoy).await;
    };
    let (code, plaintext) = codes::issue(email, purpose, &user_id, now);
    codes::store(&state.store, &code).await?;
    let mail = match purpose {
        Purpose::PasswordReset => Mail::PasswordResetCode { code: &plaintext },
        Purpose::Login => Mail::LoginCode { code: &plaintext },
        Purpose::Register => Mail::RegistrationCode { code: &plaintext },
    };
    state.mailer.send(email, mail).await
}

/// Redeems a reset code: sets the new password, verifies the address (the code proved it) and revokes every
/// session. Three round trips: the code check, the user read, the transaction; one SQS SendMessage (the notice).
pub async fn reset_password(
    state: &State,
    email: &Email,
    code: &str,
    new: &SecretString,
    now: UnixTime,
) -> Result<(), Error> {
    passwords::check_policy(new)?;
    let checked = codes::check(&state.store, email, Purpose::PasswordReset, code, now).await?;
    let user = users::get(&state.store, &checked.user_id)
        .await?
        .ok_or(Error::InvalidCode)?;
    let password_hash = passwords::hash(new).await?;
    let items = vec![
        codes::consume_item(&state.store, &checked)?,
        users::set_password_item(&state.store, &user, &password_hash, user.session_epoch + 1, true, now)?,
        login_failures::clear_item(&state.store, email.as_str())?,
    ];
    if !state.store.transact(items).await? {
        return Err(Error::InvalidCode);
    }
    state.mailer.send(email, Mail::PasswordWasReset).await
}

/// Whether a verified account exists for the address. Two round trips when the marker exists, else one.
pub async fn is_registered(state: &State, email: &Email) -> Result<bool, Error> {
    Ok(users::find_by_email(&state.store, email)
        .await?
        .is_some_and(|u| u.email_verified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(clean_name(Some("  Ada  "), "name").unwrap().as_deref(), Some("Ada"));
        assert_eq!(clean_name(Some("   "), "name").unwrap(), None);
        assert_eq!(clean_name(None, "name").unwrap(), None);
        assert!(clean_name(Some(&"x".repeat(101)), "name").is_err());
        assert!(clean_name(Some("a\u{202e}b"), "name").is_err());
        assert!(clean_name(Some("a\nb"), "name").is_err());
        assert!(clean_name(Some("Zoë 🦀"), "name").is_ok());
    }
}
