//! The email/password account lifecycle: register, verify, login, change and reset the password.

use aws_sdk_dynamodb::types::TransactWriteItem;
use secrecy::{ExposeSecret, SecretString};

use crate::backoff;
use crate::breach::Breach;
use crate::clock::UnixTime;
use crate::email::Email;
use crate::federation::config::{IdpEntry, LdapEntry};
use crate::federation::directory;
use crate::federation::ldap::Verdict;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::mfa::challenge::{self, SignIn};
use crate::passwords::{self, Verified};
use crate::rate_limit::{self, MailKind};
use crate::session::{self, RootToken, TokenResponse};
use crate::store::codes::{self, Purpose};
use crate::store::events::{self, Event, Kind};
use crate::store::login_failures;
use crate::store::mfa_challenges::{self, Outcome};
use crate::store::sessions::{self, Lifetime, Session};
use crate::store::users::{self, AccountStatus, MailboxProof, Revoke, User};
use crate::tenancy::databases::{self, Selector};
use crate::tenancy::tenants;
use crate::{Error, State};

/// Longest display or tenant name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Checks an optional display name or tenant name: trimmed, at most 100 characters, no control characters.
pub fn clean_name(raw: Option<&str>, field: &'static str) -> Result<Option<String>, Error> {
    clean_text(raw, field, MAX_NAME_CHARS)
}

/// Free text shown to people (a description, say): trimmed; blank is `None`; at most `max` characters, none of
/// them a control or a bidirectional override.
pub fn clean_text(raw: Option<&str>, field: &'static str, max: usize) -> Result<Option<String>, Error> {
    let Some(text) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max || text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(Error::InvalidField(format!(
            "{field} must be at most {max} printable characters."
        )));
    }
    Ok(Some(text.to_owned()))
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

/// Checks a new password: the policy, then the optional breach check (which fails open). No DynamoDB call; one
/// HTTPS request when the breach check is on.
pub async fn check_new_password(state: &State, password: &SecretString) -> Result<(), Error> {
    passwords::check_policy(password)?;
    match state.breach.check(password).await {
        Breach::Found(_) => Err(Error::BreachedPassword),
        Breach::NotFound | Breach::Unknown => Ok(()),
    }
}

/// Registers an address, or re-sends for a pending one, and emails a code. For an address with a verified
/// account it emails a notice instead (from the smaller notice budget), so the answer never reveals which
/// addresses have accounts. Every path runs argon2 once and makes the same calls: the marker, the user, the
/// address's mail budget, one transaction, one message in the outbox. An exhausted budget sends nothing and still
/// answers the same.
///
/// A pending address registered again with a different password is contested: nobody has proven the mailbox, so
/// neither password is kept, nor the names, and whoever holds the next code verifies an account with no usable
/// password (DESIGN §7). The same password twice (a double click) stays usable.
/// Four round trips (marker, user, budget, transaction) and one SQS call.
pub async fn register(state: &State, registration: Registration, now: UnixTime) -> Result<(), Error> {
    if directory::is_routed(state, &registration.email, now).await? {
        // The directory's people sign in with their directory password; no local account is made for the address.
        let spent = rate_limit::spend_mail(
            &state.store,
            &state.config.rate_limits,
            MailKind::Notice,
            &registration.email,
            now,
        )
        .await?;
        let mail = if spent.is_none() {
            Mail::SignInThroughDirectory
        } else {
            Mail::Decoy
        };
        return state.mailer.send(&registration.email, mail).await;
    }
    check_new_password(state, &registration.password).await?;
    // A registration that loses a race for the address tries once more, so a concurrent one is contested rather
    // than silently dropped (the winner's password must not survive unproven).
    for _ in 0..2 {
        if register_once(state, &registration, now).await? {
            return Ok(());
        }
        tracing::info!("registration lost a race for the same address; trying again");
    }
    state.mailer.send(&registration.email, Mail::Decoy).await
}

/// One read-decide-write pass of [`register`]; `false` when a concurrent write to the address won.
async fn register_once(state: &State, registration: &Registration, now: UnixTime) -> Result<bool, Error> {
    let store = &state.store;
    let limits = &state.config.rate_limits;
    let email = &registration.email;
    let user_id = users::id_for_email(store, email).await?;
    // An unknown address reads the user it would create (which is not there), so every path reads the same.
    let new_id = users::new_user_id();
    let existing = users::get(store, user_id.as_deref().unwrap_or(&new_id)).await?;
    let (pending, mut items) = match existing {
        Some(user) if user.email_verified => {
            passwords::hash(&registration.password).await?;
            let spent = rate_limit::spend_mail(store, limits, MailKind::Notice, email, now).await?;
            let item = users::notice_item(store, email, now)?;
            if !store.transact(vec![item]).await? {
                tracing::info!("a notice record lost a race");
            }
            let mail = if spent.is_none() {
                Mail::AlreadyRegistered
            } else {
                Mail::Decoy
            };
            state.mailer.send(email, mail).await?;
            return Ok(true);
        }
        Some(read) => {
            let same_password = match &read.password_hash {
                Some(hash) => passwords::verify(&registration.password, Some(hash)).await? != Verified::No,
                // Contested before: stays without a password until someone proves the mailbox.
                None => {
                    passwords::verify(&registration.password, None).await?;
                    false
                }
            };
            let mut user = read.clone();
            if same_password {
                user.name.clone_from(&registration.name);
                user.tenant_name.clone_from(&registration.tenant_name);
            } else {
                tracing::info!("a pending registration is contested; no password will survive it");
                user.password_hash = None;
                user.name = None;
                user.tenant_name = None;
            }
            let items = vec![users::replace_pending_item(store, &read, &user, now)?];
            (user, items)
        }
        None => {
            let password_hash = passwords::hash(&registration.password).await?;
            let user = User::new(
                new_id,
                email,
                registration.name.clone(),
                registration.tenant_name.clone(),
                Some(password_hash),
                now,
            );
            let items = users::create_items(store, &user)?;
            (user, items)
        }
    };
    // Registration mail has a budget of its own, so registering never spends (or reveals) the code budget that
    // the other send endpoints answer 429 from.
    let spent = rate_limit::spend_mail(store, limits, MailKind::Registration, email, now).await?;
    let (code, plaintext) = codes::issue(email, Purpose::Register, &pending.id, now);
    if spent.is_none() {
        // Over the budget no new code replaces the one the owner may be about to enter.
        items.push(codes::store_item(store, &code)?);
    }
    if !store.transact(items).await? {
        return Ok(false);
    }
    let mail = match spent {
        None => Mail::RegistrationCode { code: &plaintext },
        Some(_) => Mail::Decoy,
    };
    state.mailer.send(email, mail).await?;
    Ok(true)
}

/// Redeems a registration code: the account becomes verified and a session starts.
/// Four round trips: the code check with the guess budget (concurrent), the user read, the transaction.
pub async fn verify_registration(
    state: &State,
    email: &Email,
    code: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    redeem_code_for_session(state, email, Purpose::Register, code, client, now).await
}

/// Redeems an emailed code of `purpose` (registration or login) and starts a session (amr `otp`). The code proves
/// the address, so an unverified account becomes verified in the same transaction: with the password its
/// registration set when the code is that registration's own, and with no usable password when it is a sign-in
/// code, which no password-setting request asked for (DESIGN §7). A first proof is welcomed by email.
/// An account with two-factor authentication on gets a challenge instead of the session (see [`challenge`]).
/// Four round trips in three round-trip times: the code attempt and the guess budget (concurrent), the user read,
/// the transaction (consume the code and refund the guess, verify, create the session or the challenge, forget
/// failed logins).
pub async fn redeem_code_for_session(
    state: &State,
    email: &Email,
    purpose: Purpose,
    code: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    let guesses = state.config.rate_limits.code_guesses_per_day;
    let checked = codes::check(&state.store, email, purpose, code, guesses, now).await?;
    let user = users::get(&state.store, checked.user_id())
        .await?
        .ok_or(Error::InvalidCode)?;
    let proof = match purpose {
        Purpose::Register => MailboxProof::RegistrationCode,
        Purpose::Login | Purpose::PasswordReset => MailboxProof::SignIn,
    };
    let mut items = Vec::from(codes::consume_items(&state.store, &checked, guesses)?);
    items.push(login_failures::clear_item(&state.store, email.as_str())?);
    sign_in_with_mailbox_proof(state, user, proof, "otp", items, client, now)
        .await
        .map_err(|err| match err {
            Error::Conflict(_) => Error::InvalidCode,
            other => other,
        })
}

/// Starts a session for a user who just proved their mailbox, writing `items` in the same transaction; verifies a
/// pending account (see [`users::verify_item`]) and welcomes it by email. An account in no tenant (a registration
/// being verified, or an account made before tenancy) gets a tenant of its own in the same transaction, as its
/// root (see [`tenants::new_for_root`]). A lost race is 409 `conflict`. An account with two-factor
/// authentication on gets a challenge instead of the session; the mailbox proof still forgets failed passwords, as
/// a password reset (which the same proof allows) would, but not failed second factors
/// ([`crate::backoff::claim_second_factor`]). A directory account is signed in only while its directory still has
/// it ([`directory::vouch`]).
/// One round trip (one more per taken tenant slug), and one SQS call for a first proof; a directory account's
/// question to its directory.
pub(crate) async fn sign_in_with_mailbox_proof(
    state: &State,
    read: User,
    proof: MailboxProof,
    amr: &str,
    mut items: Vec<TransactWriteItem>,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    if read.status == AccountStatus::Disabled {
        return Err(Error::AccountDisabled);
    }
    let directory_checked_at = directory::vouch(state, &read, now).await?;
    let first_proof = !read.email_verified;
    let mut user = read.clone();
    if first_proof {
        user.email_verified = true;
        if proof == MailboxProof::SignIn {
            user.password_hash = None;
            user.name = None;
            user.tenant_name = None;
        }
    }
    // Named after the proven names only: a sign-in proof has just dropped the unproven ones.
    let mut tenant = user.tenant_id.is_none().then(|| tenants::new_for_root(&mut user, now));
    let joined = tenant.as_ref().map(|_| &user);
    match users::verify_item(&state.store, &read, proof, joined, now)? {
        Some(item) => items.push(item),
        None if tenant.is_some() => items.push(users::join_tenant_item(&state.store, &user, now)?),
        None => {}
    }
    let started = if challenge::required(&user) {
        let issued = challenge::issue(state, &user, amr, Outcome::Session, None, now)?;
        items.extend(issued.items);
        Err(issued.answer)
    } else {
        let (mut session, refresh) = Session::start(&user, &[amr], client, Lifetime::from_config(&state.config), now);
        session.directory_checked_at = directory_checked_at;
        items.extend(session::open_items(state, &user, &session, now)?);
        Ok((session, refresh))
    };
    // A first proof is the account's first sign-in: nothing to compare its device with.
    let notice = async {
        match started {
            Ok(_) if !first_proof => session::recent_for_notice(state, &user, now).await,
            _ => None,
        }
    };
    let (written, recent) = tokio::join!(tenants::transact_creating(&state.store, items, tenant.as_mut()), notice);
    if !written? {
        return Err(Error::Conflict("The account changed during sign-in; try again."));
    }
    if first_proof {
        let email = Email::parse(&user.email)?;
        let welcome = Mail::Welcome {
            has_password: user.password_hash.is_some(),
        };
        // The session exists: a mail that cannot be queued must not turn it into an error.
        if let Err(err) = state.mailer.send(&email, welcome).await {
            tracing::warn!(error = ?err, "queueing the welcome mail failed");
        }
    }
    match started {
        Ok((session, refresh)) => Ok(SignIn::Complete(
            session::opened(state, &user, &session, &refresh, recent, now).await?,
        )),
        Err(answer) => Ok(SignIn::Challenged(answer)),
    }
}

/// Checks an email and password and starts a session, scoped to the database `database` names when given (a
/// database of the account's tenant: anything else is 404, asked only once the password is right). Every attempt
/// first claims its slot in the account's backoff (see [`crate::backoff`]), concurrently with the per-IP counter,
/// the marker read and the database read, so attempts sent at once get no more verdicts than the backoff allows.
/// Unknown addresses cost the same argon2 run as known ones, and count failures the same way; an account without
/// a usable password fails like a wrong password. An account made before tenancy gets a tenant of its own, as
/// its root, in the session's transaction. An account with two-factor authentication on gets a challenge instead
/// of the session (see [`challenge`]), bound to the database; its attempt stays counted in the backoff until the
/// second factor's verdict, so a password alone never resets the backoff.
/// Round trips when the password is right, for an account whose marker carries a copy of it (every sign-in
/// after the first): four in two round-trip times, (the per-IP counter, the claim, the marker with the copy, and
/// the database when one is named), then one transaction (the session or the challenge, clearing the failures,
/// and a check that the account is still exactly the copy). Without a usable copy, or when the account changed
/// since the copy was made, the user is read before the transaction, which then also stores the copy: three
/// round-trip times. A failure past the free ones writes its wait instead; an old hash is upgraded after the
/// transaction.
pub async fn login(
    state: &State,
    email: &str,
    password: &SecretString,
    database: Option<&Selector>,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    let store = &state.store;
    let mut checked = check_password(state, email, password, database, client, true, now).await?;
    let mut beside = None;
    let (user, started) = loop {
        let mut user = checked.user.clone();
        let mut tenant = user.tenant_id.is_none().then(|| tenants::new_for_root(&mut user, now));
        let scoped = match database {
            Some(_) => match databases::in_tenant(checked.looked_up.clone(), user.tenant_id.as_deref()) {
                Ok(found) => Some(found),
                // A copy's tenant never decides the answer: a stale one could make a former password (or a
                // disabled account's) answer 404 where the account as it is answers 401 (or 403).
                Err(_) if checked.snapshot == Snapshot::Copy => {
                    checked = recheck(state, checked, password, now).await?;
                    continue;
                }
                Err(err) => {
                    checked.attempt.release(store).await?;
                    if !checked.cleared.is_empty() && !store.transact(checked.cleared).await? {
                        tracing::info!("a directory guard changed while it was cleared");
                    }
                    return Err(err);
                }
            },
            None => None,
        };
        let mut items = checked.items.clone();
        if tenant.is_some() {
            items.push(users::join_tenant_item(store, &user, now)?);
        }
        items.extend(checked.snapshot_items(store, tenant.is_none())?);
        let started = if challenge::required(&user) {
            let issued = challenge::issue(state, &user, "pwd", Outcome::Session, scoped.as_ref(), now)?;
            items.extend(issued.items);
            Err((issued.challenge, issued.answer))
        } else {
            let (mut session, refresh) =
                Session::start(&user, &["pwd"], client, Lifetime::from_config(&state.config), now);
            session.scope_to(scoped.as_ref());
            if checked.directory {
                session.directory_checked_at = Some(now);
            }
            items.extend(session::open_items(state, &user, &session, now)?);
            items.push(checked.attempt.clear_item(store)?);
            Ok((session, refresh))
        };
        // A conflict with another write of the same items (two sign-ins of one account at once, say) is a lost
        // race like a failed condition: a copy is then decided again, anything else answers 409.
        let write = async {
            match tenant.as_mut() {
                Some(tenant) => tenants::transact_creating(store, items, Some(tenant)).await,
                None => store.transact_racing(items).await,
            }
        };
        // The breach check (when on) and the new-device read run beside the write, once each: the password is
        // right, so it may be told about. A later pass reads the devices only if an earlier one, a challenge, did
        // not.
        let (breach_before, recent_before) = beside
            .take()
            .map_or((None, None), |(breach, recent)| (Some(breach), recent));
        let breach = async {
            match breach_before {
                Some(breach) => breach,
                None => state.breach.check(password).await,
            }
        };
        let notice = async {
            match (&started, recent_before) {
                (Ok(_), Some(recent)) => Some(recent),
                (Ok(_), None) => session::recent_for_notice(state, &user, now).await,
                (Err(_), _) => None,
            }
        };
        let (written, breach, recent) = tokio::join!(write, breach, notice);
        beside = Some((breach, recent));
        let written = written?;
        if written {
            break (user, started);
        }
        if checked.snapshot != Snapshot::Copy {
            return Err(Error::Conflict("The sign-in raced another request; try again."));
        }
        // The account changed since its copy was made: decide again on the account as it is now.
        checked = recheck(state, checked, password, now).await?;
    };
    upgrade_hash(store, &user, password, checked.rehash).await;
    let (breach, recent) = beside.ok_or(Error::Conflict("The sign-in raced another request; try again."))?;
    let breached = matches!(breach, Breach::Found(_));
    let (session, refresh) = match started {
        Ok(started) => started,
        Err((challenge, answer)) => {
            checked.attempt.count_until_second_factor();
            // The answer to the challenge says so, as this one would have.
            if breached {
                mfa_challenges::mark_password_breached(store, &challenge).await?;
            }
            return Ok(SignIn::Challenged(answer));
        }
    };
    let mut tokens = session::opened(state, &user, &session, &refresh, recent, now).await?;
    tokens.password_breached = breached;
    Ok(SignIn::Complete(tokens))
}

/// Where a password sign-in's account record came from, which decides what its transaction must add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    /// The copy on the address's marker: the transaction holds only while the user item is still exactly it.
    Copy,
    /// The user item, read by this sign-in: the transaction stores it as the marker's copy when it may be one.
    Read,
    /// A directory account, or a sign-in that keeps no copy.
    Other,
}

/// A password attempt whose password was right, for an active, verified account.
struct Checked {
    user: User,
    attempt: backoff::Attempt,
    rehash: bool,
    looked_up: Option<databases::Database>,
    /// To write with the session: a directory account's creation or new address, and `cleared`.
    items: Vec<TransactWriteItem>,
    /// The directory guards' records, cleared (the password was right): also written when the sign-in stops
    /// after the password, so a right password never counts against the guard.
    cleared: Vec<TransactWriteItem>,
    /// Whether a directory checked the password (its sessions record when it was last asked).
    directory: bool,
    /// Where `user` came from.
    snapshot: Snapshot,
}

impl Checked {
    /// What the sign-in's transaction adds for its snapshot: the check that a copy still holds; or, for an account
    /// just read, the new copy with the same check, so that a copy is only ever written of the account as it is
    /// (a sign-in racing a password change must not store the old hash). Neither for an account that gets its
    /// tenant in this transaction, nor one whose hash is about to change.
    fn snapshot_items(&self, store: &crate::store::Store, settled: bool) -> Result<Vec<TransactWriteItem>, Error> {
        Ok(match self.snapshot {
            Snapshot::Copy => vec![users::unchanged_check_item(store, &self.user)?],
            Snapshot::Read if settled && !self.rehash && users::copyable(&self.user) => vec![
                users::unchanged_check_item(store, &self.user)?,
                users::copy_to_marker_item(store, &self.user)?,
            ],
            Snapshot::Read | Snapshot::Other => Vec::new(),
        })
    }
}

/// The password check every password sign-in shares (see [`login`]): the per-IP counter, the backoff claim, the
/// marker and the named database (if any) concurrently, then argon2 against the marker's copy of the account
/// (when `copies` and it has a usable one) or the user read after the marker. A failure always reads the user,
/// whichever way it went, so an unknown address, an account with a copy and one without make the same calls and
/// the same argon2 run, and count failures the same way; a right password of an unverified (403
/// `email_not_verified`) or disabled (403 `account_disabled`) account counts as a failure too, so neither is a
/// faster password oracle. A success from the copy is two round-trip times; anything else four round trips in
/// two round-trip times, plus the wait after a failure.
async fn check_password(
    state: &State,
    email: &str,
    password: &SecretString,
    database: Option<&Selector>,
    client: &ClientInfo,
    copies: bool,
    now: UnixTime,
) -> Result<Checked, Error> {
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("login");
    let limited = rate_limit::check_client_ip(store, &rule, client, now);
    let Ok(email) = Email::parse(email) else {
        limited.await?;
        // No account can have this address; still spend the same argon2 run.
        passwords::verify(password, None).await?;
        return Err(Error::InvalidCredentials);
    };
    let lookup = async {
        match database {
            Some(selector) => selector.lookup(store).await,
            None => Ok(None),
        }
    };
    // Both are cached reads; on a cold start they read their secrets side by side, the signing key (needed only
    // for the answer) beside the routing that has to come first. A failure to load the key shows when signing.
    let (idps, _) = tokio::join!(state.idps.get(now), state.keys.signing(now));
    let idps = idps?;
    if let Some((entry, ldap)) = directory::route(&idps, &email) {
        let (limited, attempt, looked_up) = tokio::join!(
            limited,
            backoff::claim_directory(
                store,
                email.as_str(),
                &entry.id,
                ldap.max_failures,
                ldap.failure_window_seconds,
                now
            ),
            lookup
        );
        if let Err(refused) = limited {
            if let Ok(attempt) = attempt {
                attempt.release(store).await?;
            }
            return Err(refused);
        }
        return check_with_directory(state, entry, ldap, &email, password, attempt?, looked_up?, now).await;
    }
    let (limited, attempt, marker, looked_up) = tokio::join!(
        limited,
        backoff::claim(store, email.as_str(), now),
        users::marker_for_email(store, &email),
        lookup
    );
    if let Err(refused) = limited {
        if let Ok(attempt) = attempt {
            attempt.release(store).await?;
        }
        return Err(refused);
    }
    let attempt = attempt?;
    match marker? {
        Some(users::Marker { copy: Some(copy), .. }) if copies => {
            let verified = passwords::verify(password, copy.password_hash.as_deref()).await?;
            if verified != Verified::No {
                return Ok(Checked {
                    rehash: verified == Verified::YesRehash,
                    looked_up: looked_up?,
                    items: Vec::new(),
                    cleared: Vec::new(),
                    directory: false,
                    snapshot: Snapshot::Copy,
                    user: copy,
                    attempt,
                });
            }
            // A failure reads the account, as the other failures do.
            let user = users::get(store, &copy.id).await?;
            let verified = reverify(store, password, &copy, user.as_ref(), verified).await?;
            decide(state, attempt, user, verified, looked_up, now).await
        }
        marker => {
            // An unknown address reads a user that is not there, so it makes the same calls as a known one.
            let id = marker.map_or_else(users::new_user_id, |marker| marker.user_id);
            let user = users::get(store, &id).await?;
            let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
            let verified = passwords::verify(password, hash).await?;
            decide(state, attempt, user, verified, looked_up, now).await
        }
    }
}

/// The verdict on the account as it is now, given the verdict on its copy: the same unless the hash changed
/// since the copy was made (a password change drops the copy, so only a race gets here), when argon2 runs again.
async fn reverify(
    store: &crate::store::Store,
    password: &SecretString,
    copy: &User,
    current: Option<&User>,
    on_copy: Verified,
) -> Result<Verified, Error> {
    let hash = current.and_then(|u| u.password_hash.as_deref());
    if hash.is_some() && hash == copy.password_hash.as_deref() {
        return Ok(on_copy);
    }
    tracing::warn!("a sign-in copy had an outdated password hash; dropping it");
    let (verified, ()) = tokio::join!(passwords::verify(password, hash), users::forget_copy(store, copy));
    verified
}

/// A sign-in decided on the marker's copy found the account changed when it wrote: reads the account and
/// decides again, as if it had been read in the first place (without a second claim, and with argon2 again only
/// when the hash changed). One round trip.
async fn recheck(state: &State, checked: Checked, password: &SecretString, now: UnixTime) -> Result<Checked, Error> {
    let user = users::get(&state.store, &checked.user.id).await?;
    let on_copy = if checked.rehash {
        Verified::YesRehash
    } else {
        Verified::Yes
    };
    let verified = reverify(&state.store, password, &checked.user, user.as_ref(), on_copy).await?;
    decide(state, checked.attempt, user, verified, Ok(checked.looked_up), now).await
}

/// The verdict on a password attempt at `user` (none for an unknown address): the account when the password is
/// right and the account may sign in, or the refusal, settled in the backoff and the account's history.
async fn decide(
    state: &State,
    attempt: backoff::Attempt,
    user: Option<User>,
    verified: Verified,
    looked_up: Result<Option<databases::Database>, Error>,
    now: UnixTime,
) -> Result<Checked, Error> {
    let right = matches!(verified, Verified::Yes | Verified::YesRehash);
    let (refusal, user) = match user {
        Some(user) if right && !user.email_verified => (Error::EmailNotVerified, Some(user)),
        Some(user) if right && user.status == AccountStatus::Disabled => (Error::AccountDisabled, Some(user)),
        Some(user) if right => {
            return Ok(Checked {
                user,
                attempt,
                rehash: verified == Verified::YesRehash,
                looked_up: looked_up?,
                items: Vec::new(),
                cleared: Vec::new(),
                directory: false,
                snapshot: Snapshot::Read,
            })
        }
        user => (Error::InvalidCredentials, user),
    };
    // Beside the backoff's write, so the record costs no round-trip time, and an unknown address (which has no
    // history to record in) answers as fast as a known one.
    let (settled, recorded) = tokio::join!(
        attempt.failed(&state.store, now),
        record_failed_sign_in(state, user.as_ref(), "password", &refusal, now)
    );
    settled.and(recorded)?;
    Err(refusal)
}

/// Counts a refused sign-in, and records it in the history of the account it was for. An address without an
/// account makes the same call, refused by its condition (an unknown address must cost what a known one costs).
/// One round trip.
pub(crate) async fn record_failed_sign_in(
    state: &State,
    user: Option<&User>,
    method: &'static str,
    refusal: &Error,
    now: UnixTime,
) -> Result<(), Error> {
    crate::telemetry::sign_in(method, false);
    let Some(user) = user else {
        return events::put_decoy(&state.store, now).await;
    };
    events::put(&state.store, &failed_sign_in(state, user, method, refusal, now)).await
}

/// The `sign_in_failed` event of `user`: how it was tried, and the refusal's code.
pub(crate) fn failed_sign_in(state: &State, user: &User, method: &str, refusal: &Error, now: UnixTime) -> Event {
    Event::new(Kind::SignInFailed, user, now, state.config.event_retention)
        .with("method", method)
        .with("reason", refusal.code())
}

/// The password check of an address routed to a directory (see [`directory`]): the directory searches for the
/// address and binds as the entry found. A rejection is the same 401 `invalid_credentials` as a local failure
/// and counts in both records; a directory that does not answer is 503 `idp_unavailable` and counts in neither;
/// there is never a fallback to a local password. The account is the directory identity's (made at its first
/// sign-in), written with the session.
/// Two guards stop before the directory would lock a person: one per address (claimed with the backoff), one per
/// directory entry (claimed between the search and the bind, so a person's other addresses add no binds).
/// Round trips after the claims: the directory's search (a service bind and a search), the entry's guard, the
/// directory's bind, then [`directory::account_for`]'s.
#[allow(clippy::too_many_arguments)]
async fn check_with_directory(
    state: &State,
    entry: &IdpEntry,
    ldap: &LdapEntry,
    email: &Email,
    password: &SecretString,
    attempt: backoff::DirectoryAttempt,
    looked_up: Option<databases::Database>,
    now: UnixTime,
) -> Result<Checked, Error> {
    let store = &state.store;
    // An empty password is an unauthenticated bind (RFC 4513), which some servers accept: never sent.
    if password.expose_secret().is_empty() {
        attempt.failed(store, now).await?;
        return Err(Error::InvalidCredentials);
    }
    // The search binds as the service account only: it cannot lock anyone.
    let candidate = match state.directories.candidate(&entry.id, ldap, email.as_str()).await {
        Ok(Some(candidate)) => candidate,
        Ok(None) => {
            attempt.failed(store, now).await?;
            return Err(Error::InvalidCredentials);
        }
        Err(err) => {
            attempt.release(store).await?;
            return Err(err);
        }
    };
    let guard = backoff::claim_directory_entry(
        store,
        &entry.id,
        &candidate.user().id,
        ldap.max_failures,
        ldap.failure_window_seconds,
        now,
    )
    .await;
    let guard = match guard {
        Ok(guard) => guard,
        Err(refused) => {
            state.directories.set_aside(&entry.id, candidate).await;
            attempt.release(store).await?;
            return Err(refused);
        }
    };
    let found = match state.directories.check(&entry.id, candidate, password).await {
        Ok(Verdict::Authenticated(found)) => found,
        Ok(Verdict::Rejected) => {
            crate::telemetry::sign_in("password", false);
            let (settled, guarded) = tokio::join!(attempt.failed(store, now), guard.failed(store, now));
            settled.and(guarded)?;
            return Err(Error::InvalidCredentials);
        }
        Err(err) => {
            // The bind was sent: a directory counts a wrong password it received even when its answer never came.
            let (settled, guarded) = tokio::join!(attempt.failed(store, now), guard.failed(store, now));
            settled.and(guarded)?;
            return Err(err);
        }
    };
    let (user, mut items) = match directory::account_for(state, entry, &found, email, now).await {
        Ok(account) => account,
        Err(err) => {
            let (settled, guarded) = tokio::join!(attempt.release(store), guard.release(store));
            settled.and(guarded)?;
            return Err(err);
        }
    };
    if user.status == AccountStatus::Disabled {
        let (settled, guarded) = tokio::join!(attempt.failed(store, now), guard.failed(store, now));
        settled.and(guarded)?;
        return Err(Error::AccountDisabled);
    }
    let (attempt, address_guard) = attempt.directory_accepted(store)?;
    let cleared = vec![address_guard, guard.succeeded_item(store)?];
    items.extend(cleared.iter().cloned());
    Ok(Checked {
        user,
        attempt,
        rehash: false,
        looked_up,
        items,
        cleared,
        directory: true,
        snapshot: Snapshot::Other,
    })
}

/// Stores a re-hash made with current parameters when the verified hash asked for one. Best effort: the sign-in
/// stands either way.
pub(crate) async fn upgrade_hash(store: &crate::store::Store, user: &User, password: &SecretString, rehash: bool) {
    if !rehash {
        return;
    }
    let upgraded = async {
        let upgraded = passwords::hash(password).await?;
        users::upgrade_password_hash(store, user, &upgraded).await
    };
    match upgraded.await {
        Ok(()) => users::forget_copy(store, user).await,
        Err(err) => tracing::warn!(error = ?err, "upgrading a password hash failed; the sign-in stands"),
    }
}

/// Checks an email and password exactly as [`login`] does (same failures, same backoff), and only then refuses a
/// right password of an account that is not its tenant's root (403 `insufficient_role`). The token has no
/// session: it carries the account's session epoch instead, so anything that ends the account's sessions (a
/// password change or reset, a transfer of root, a disable) ends it too. An account made before tenancy becomes
/// the root of a tenant of its own here, as at any sign-in. A root with two-factor authentication on gets a
/// challenge, whose answer is the root token (see [`challenge`]).
/// Five round trips in three round-trip times: the password check's four, one transaction (clearing the failures
/// or storing the challenge, and a pre-tenancy account's new tenant).
pub async fn login_root(
    state: &State,
    email: &str,
    password: &SecretString,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<RootToken>, Error> {
    let store = &state.store;
    let Checked {
        mut user,
        attempt,
        rehash,
        mut items,
        ..
    } = check_password(state, email, password, None, client, false, now).await?;
    let mut tenant = user.tenant_id.is_none().then(|| tenants::new_for_root(&mut user, now));
    if tenant.is_some() {
        items.push(users::join_tenant_item(store, &user, now)?);
    }
    let is_root = user.role == Some(crate::tenancy::Role::Root);
    let answer = match (challenge::required(&user), is_root) {
        (true, true) => {
            let issued = challenge::issue(state, &user, "pwd", Outcome::Root, None, now)?;
            items.extend(issued.items);
            attempt.count_until_second_factor();
            Some(issued.answer)
        }
        // Refused below for its role; a password alone never clears the backoff of an account with a second
        // factor, or this endpoint would reset the budget of guesses at it.
        (true, false) => {
            attempt.count_until_second_factor();
            None
        }
        (false, _) => {
            items.push(attempt.succeeded_item(store)?);
            if is_root {
                items.push(session::root_sign_in_item(state, &user, &["pwd"], now)?);
            }
            None
        }
    };
    let (written, ()) = tokio::join!(
        tenants::transact_creating(store, items, tenant.as_mut()),
        upgrade_hash(store, &user, password, rehash)
    );
    if !written? {
        return Err(Error::Conflict("The sign-in raced another request; try again."));
    }
    if !is_root {
        return Err(Error::InsufficientRole(
            "Only the tenant's root can sign in here; use /v1/auth/login.",
        ));
    }
    match answer {
        Some(answer) => Ok(SignIn::Challenged(answer)),
        None => Ok(SignIn::Complete(
            session::root_token(state, &user, &["pwd"], now).await?,
        )),
    }
}

/// How recent a sign-in must be to set a first password without the current one.
pub const REAUTHENTICATION_WINDOW_SECONDS: i64 = 300;

/// A password change, validated.
pub struct PasswordChange {
    /// The current password; absent when the account has none yet.
    pub current: Option<SecretString>,
    /// The new password.
    pub new: SecretString,
    /// Whether to revoke every personal access token too (a new token epoch).
    pub revoke_api_tokens: bool,
}

/// Changes the password of a signed-in user and revokes every other session of theirs (and, when asked, every
/// PAT), in one transaction. Guesses of the current password spend the login backoff of the account. An account
/// without a usable password sets its first one without a current password, but only from a session whose
/// sign-in is at most five minutes old, so a stolen access token cannot become a permanent password.
/// One round trip (the transaction, which also drops the login copy on the address's marker) after
/// authentication, plus the backoff claim (and its wait after a wrong guess) when there is a current password;
/// one SQS call for the notice.
pub async fn change_password(
    state: &State,
    user: &User,
    session: &Session,
    change: PasswordChange,
    now: UnixTime,
) -> Result<(), Error> {
    let store = &state.store;
    if user.idp.is_some() {
        // The directory that provisioned the account decides who still works there: a local password would outlive
        // its say.
        return Err(Error::PasswordManagedExternally);
    }
    check_new_password(state, &change.new).await?;
    let attempt = match (&user.password_hash, &change.current) {
        (Some(hash), Some(current)) => {
            let attempt = match user.kind {
                users::AccountKind::Individual => backoff::claim(store, &user.backoff_key(), now).await?,
                users::AccountKind::Service => backoff::claim_without_lock(store, &user.backoff_key(), now).await?,
            };
            if passwords::verify(current, Some(hash)).await? == Verified::No {
                attempt.failed(store, now).await?;
                return Err(Error::WrongPassword);
            }
            Some(attempt)
        }
        (Some(_), None) => {
            return Err(Error::InvalidRequest(
                "The request is invalid: missing field `current_password`.".to_owned(),
            ))
        }
        (None, _) if now - session.created_at > REAUTHENTICATION_WINDOW_SECONDS => {
            return Err(Error::ReauthenticationRequired)
        }
        (None, _) => None,
    };
    let password_hash = passwords::hash(&change.new).await?;
    let revoke = if change.revoke_api_tokens {
        Revoke::SessionsAndTokens
    } else {
        Revoke::Sessions
    };
    let event = Event::new(Kind::PasswordChanged, user, now, state.config.event_retention)
        .in_session(&session.id)
        .with("first_password", attempt.is_none().to_string())
        .with("tokens_revoked", change.revoke_api_tokens.to_string());
    let mut items = vec![
        users::set_password_item(store, user, &password_hash, revoke, false, now)?,
        sessions::move_to_epoch_item(store, &session.id, user.session_epoch + 1)?,
        events::put_item(store, &event)?,
    ];
    if let Some(attempt) = attempt {
        items.push(attempt.succeeded_item(store)?);
    }
    if !users::transact_dropping_copy(store, items, user).await? {
        return Err(Error::SessionRevoked);
    }
    if user.kind == users::AccountKind::Service {
        // A service account has no mailbox to tell.
        return Ok(());
    }
    let email = Email::parse(&user.email)?;
    state
        .mailer
        .send(
            &email,
            Mail::PasswordChanged {
                tokens_revoked: change.revoke_api_tokens,
            },
        )
        .await
}

/// The whole of an "email me a code" request, shared by `otp/send` and `password-reset-request`: the per-IP limit
/// and the address's code budget, then [`send_code`]. The answer is the same whether or not the address has an
/// account.
/// Round trips: the IP counter, the budget, then [`send_code`]'s two; one SQS call.
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

/// Emails a code of `purpose` (password reset or login) when the address has an account. For an unknown address
/// it stores a code for no account and queues a decoy, so the calls are the same either way. A new code replaces
/// the previous one of the same purpose. An address routed to a directory gets no code, but a notice that its
/// sign-in (or its password) is the directory's.
/// Two round trips (the marker, the code) and one SQS call.
pub async fn send_code(state: &State, email: &Email, purpose: Purpose, now: UnixTime) -> Result<(), Error> {
    if directory::is_routed(state, email, now).await? {
        // No code for an address a directory is authoritative for: its password and sign-in live there.
        let mail = match purpose {
            Purpose::PasswordReset => Mail::PasswordManagedByDirectory,
            Purpose::Login | Purpose::Register => Mail::SignInThroughDirectory,
        };
        return state.mailer.send(email, mail).await;
    }
    let user_id = users::id_for_email(&state.store, email).await?;
    let (code, plaintext) = codes::issue(email, purpose, user_id.as_deref().unwrap_or_default(), now);
    codes::store(&state.store, &code).await?;
    let mail = match (&user_id, purpose) {
        (None, _) => Mail::Decoy,
        (Some(_), Purpose::PasswordReset) => Mail::PasswordResetCode { code: &plaintext },
        (Some(_), Purpose::Login) => Mail::LoginCode { code: &plaintext },
        (Some(_), Purpose::Register) => Mail::RegistrationCode { code: &plaintext },
    };
    state.mailer.send(email, mail).await
}

/// Redeems a reset code: sets the new password, verifies the address (the code proved it) and revokes every
/// session and every personal access token (both epochs). Four round trips in three round-trip times: the code
/// check with the guess budget, the user read, the transaction (which also drops the login copy on the address's
/// marker); one SQS call.
pub async fn reset_password(
    state: &State,
    email: &Email,
    code: &str,
    new: &SecretString,
    now: UnixTime,
) -> Result<(), Error> {
    check_new_password(state, new).await?;
    let guesses = state.config.rate_limits.code_guesses_per_day;
    let checked = codes::check(&state.store, email, Purpose::PasswordReset, code, guesses, now).await?;
    let user = users::get(&state.store, checked.user_id())
        .await?
        .ok_or(Error::InvalidCode)?;
    if user.idp.is_some() {
        // The code proved the mailbox, so saying why is no leak.
        return Err(Error::PasswordManagedExternally);
    }
    let password_hash = passwords::hash(new).await?;
    let mut items = Vec::from(codes::consume_items(&state.store, &checked, guesses)?);
    items.push(users::set_password_item(
        &state.store,
        &user,
        &password_hash,
        Revoke::SessionsAndTokens,
        true,
        now,
    )?);
    items.push(login_failures::clear_item(&state.store, email.as_str())?);
    let event = Event::new(Kind::PasswordReset, &user, now, state.config.event_retention);
    items.push(events::put_item(&state.store, &event)?);
    if !users::transact_dropping_copy(&state.store, items, &user).await? {
        return Err(Error::InvalidCode);
    }
    state.mailer.send(email, Mail::PasswordWasReset).await
}

/// Emails the owner of `user` a security notice (a factor added or removed, say). The change is made already: a
/// mail that cannot be queued is logged, not an error. No call for an account without an address.
pub(crate) async fn notify_owner(state: &State, user: &User, mail: Mail<'_>) {
    let Ok(email) = Email::parse(&user.email) else {
        return;
    };
    if let Err(err) = state.mailer.send(&email, mail).await {
        tracing::warn!(error = ?err, "queueing a security notice failed");
    }
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
