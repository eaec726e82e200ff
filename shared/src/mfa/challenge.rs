//! The login challenge. A first factor that is right for an account with two-factor authentication on yields a
//! [`SignIn::Challenged`] instead of tokens: a single-use challenge, stored server-side
//! ([`crate::store::mfa_challenges`]), that [`verify`] exchanges for what the first factor would have given.
//! Nothing in a challenge answer but `methods` depends on the account.

use serde::Serialize;

use super::{check_code, methods};
use crate::account::notify_owner as notify;
use crate::backoff;
use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::rate_limit;
use crate::session::{self, RootToken, TokenResponse};
use crate::store::databases::{self, Database};
use crate::store::decode;
use crate::store::events::{self, Event, Kind};
use crate::store::mfa_challenges::{self, Challenge, Outcome, CHALLENGE_TTL_SECONDS};
use crate::store::second_factors::{self, Proof, SecondFactors};
use crate::store::sessions::{Lifetime, Session};
use crate::store::users::{self, AccountStatus, User};
use crate::tenancy::Role;
use crate::{Error, State};

/// What a first factor answers: tokens, or a challenge for the second factor.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SignIn<T> {
    /// Signed in.
    Complete(T),
    /// A second factor is due.
    Challenged(ChallengeAnswer),
}

/// The body that asks for a second factor.
#[derive(Debug, Serialize)]
pub struct ChallengeAnswer {
    /// Always `true`.
    pub mfa_required: bool,
    /// The token to send back to `/v1/auth/2fa/verify` with the code.
    pub challenge_token: String,
    /// The second factors the account can answer with.
    pub methods: Vec<&'static str>,
    /// Seconds left to answer.
    pub expires_in: i64,
}

/// Whether a first factor of `user` must be followed by a second.
pub fn required(user: &User) -> bool {
    user.mfa_enabled_at.is_some()
}

/// A challenge issued at a sign-in: what to write (in place of the session), and what to answer.
pub(crate) struct Issued {
    /// The stored challenge.
    pub challenge: Challenge,
    /// The transaction items that store it and record it (`second_factor_requested`: a right first factor is
    /// worth the owner's attention even when no second factor is ever tried).
    pub items: [aws_sdk_dynamodb::types::TransactWriteItem; 2],
    /// The answer to give.
    pub answer: ChallengeAnswer,
}

/// A new challenge for `user` after the first factor `amr`.
pub(crate) fn issue(
    state: &State,
    user: &User,
    amr: &str,
    outcome: Outcome,
    database: Option<&Database>,
    now: UnixTime,
) -> Result<Issued, Error> {
    let (challenge, token) = Challenge::issue(user, &[amr], outcome, database.map(|d| d.id.as_str()), now);
    let event = Event::new(Kind::SecondFactorRequested, user, now, state.config.event_retention)
        .with("method", session::sign_in_method(&[amr]));
    let items = [
        mfa_challenges::create_item(&state.store, &challenge)?,
        events::put_item(&state.store, &event)?,
    ];
    crate::telemetry::mfa_challenge();
    Ok(Issued {
        challenge,
        items,
        answer: ChallengeAnswer {
            mfa_required: true,
            challenge_token: token,
            methods: methods(user, None),
            expires_in: CHALLENGE_TTL_SECONDS,
        },
    })
}

/// What an answered challenge yields: the first factor's own answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Verified {
    /// A session's tokens.
    Session(Box<TokenResponse>),
    /// A root token.
    Root(RootToken),
}

const INVALID: Error = Error::InvalidToken("The challenge is invalid, used or expired; sign in again.");

/// Answers a challenge with a TOTP code or a backup code. A right code that was not used before ends the
/// challenge and yields the first factor's answer, with both factors and `mfa` in `amr`. A wrong, used or
/// replayed code is 400 `invalid_code`; it counts against the challenge (five kill it) and against the account's
/// backoff. A challenge that is unknown, used, expired or dead, or whose account's sessions were ended since
/// (a password reset, a disable), is 401 `invalid_token`.
/// Round trips: the per-IP counter and the challenge concurrently; the two backoff claims (see
/// [`backoff::claim_second_factor`]) and one BatchGetItem (user, factors, and the database when the sign-in named
/// one) concurrently; one transaction (spend the code, use the challenge, clear the backoffs, start the session, and
/// a backup code's `backup_code_used` event). A wrong code writes the challenge's count and the backoffs' waits
/// concurrently instead; a used backup code adds one SQS call.
pub async fn verify(
    state: &State,
    token: &str,
    code: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<Verified, Error> {
    let store = &state.store;
    let code = super::check_code_field(code)?;
    let rule = state.config.rate_limits.verify_rule("2fa-verify");
    let (limited, challenge) = tokio::join!(
        rate_limit::check_client_ip(store, &rule, client, now),
        mfa_challenges::get(store, token, now)
    );
    limited?;
    let challenge = challenge?.ok_or(INVALID)?;
    let (attempt, read) = tokio::join!(
        backoff::claim_second_factor(store, &challenge.backoff_key, &challenge.user_id, now),
        read_for(state, &challenge)
    );
    let attempt = attempt?;
    // A request refused before its code is judged gives its claims back.
    let judged = match read {
        Ok(Some(read)) => match super::keys_for(state, &read.1, now).await {
            Ok(keys) => check_code(&keys, &read.1, code, true, now).map(|proof| (read, proof)),
            Err(err) => Err(err),
        },
        Ok(None) => Err(INVALID),
        Err(err) => Err(err),
    };
    let ((user, factors, database), proof) = match judged {
        Ok(judged) => judged,
        Err(err) => {
            attempt.release(store).await?;
            return Err(err);
        }
    };
    let Some(proof) = proof else {
        crate::telemetry::mfa_failure();
        // A right first factor and a wrong second one is the clearest sign a password leaked: the owner sees it.
        let event = crate::account::failed_sign_in(state, &user, "second_factor", &Error::InvalidCode, now);
        let (failed, counted, recorded) = tokio::join!(
            attempt.failed(store, now),
            mfa_challenges::count_wrong(store, &challenge),
            events::put(store, &event)
        );
        failed?;
        counted?;
        recorded?;
        return Err(Error::InvalidCode);
    };
    let mut amr: Vec<&str> = challenge.amr.iter().map(String::as_str).collect();
    amr.extend([proof.amr(), "mfa"]);
    let mut items = vec![
        second_factors::spend_item(store, &user.id, &proof, now)?,
        mfa_challenges::consume_item(store, &challenge)?,
    ];
    items.extend(attempt.succeeded_items(store)?);
    let remaining = factors.backup_codes.len().saturating_sub(1);
    let event = matches!(proof, Proof::BackupCode { .. }).then(|| {
        Event::new(Kind::BackupCodeUsed, &user, now, state.config.event_retention)
            .with("remaining", remaining.to_string())
    });
    let answered = Answered {
        challenge: &challenge,
        user: &user,
        database: database.as_ref(),
        amr: &amr,
        event,
    };
    // Losing means another request spent this code or this challenge first.
    let verified = conclude(state, answered, items, Error::InvalidCode, client, now).await?;
    if let Proof::BackupCode { .. } = proof {
        notify(state, &user, Mail::BackupCodeUsed { remaining }).await;
    }
    Ok(verified)
}

/// Answers a challenge with a passkey: a ceremony started at `/v1/auth/passkey/login/options` with this challenge
/// token, and its credential. The passkey must be the challenge's account's; the answer is what the first factor
/// would have given, with `amr` `[<first factor>, "hwk" | "swk", "mfa"]`. A passkey that does not verify counts
/// against the challenge and the backoff as a wrong code does (401 `invalid_credentials`).
/// Round trips: the per-IP counter and the challenge; the ceremony; the credential's owner; the user and the
/// passkey; the backoff claim; one BatchGetItem (user, factors, database); one transaction (the passkey's counter,
/// the challenge used, the backoffs cleared, the session).
pub async fn verify_with_passkey(
    state: &State,
    token: &str,
    ceremony_id: &str,
    credential: &webauthn_rs::prelude::PublicKeyCredential,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<Verified, Error> {
    use crate::store::ceremonies::{self, Kind};
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("2fa-verify");
    let (limited, challenge, ceremony) = tokio::join!(
        rate_limit::check_client_ip(store, &rule, client, now),
        mfa_challenges::get(store, token, now),
        ceremonies::take(store, ceremony_id, &[Kind::SecondFactor], now)
    );
    limited?;
    let challenge = challenge?.ok_or(INVALID)?;
    let hash = mfa_challenges::token_hash(token);
    let ceremony = ceremony?
        .filter(|c| c.challenge.as_deref() == Some(hash.as_str()) && c.user_id == challenge.user_id)
        .ok_or(Error::InvalidToken(
            "The ceremony is invalid, used or expired; start again.",
        ))?;
    let asserted = match crate::passkeys::authentication::assert(state, &ceremony, credential, now).await {
        Ok(asserted) => asserted,
        Err(err) => {
            if matches!(err, Error::PasskeyRejected(_)) {
                crate::telemetry::mfa_failure();
                // The challenge names only the account: its tenant is not read for this, so the event is the
                // account's own.
                let event = Event::about(
                    events::Kind::SignInFailed,
                    &challenge.user_id,
                    None,
                    now,
                    state.config.event_retention,
                )
                .with("method", "second_factor")
                .with("reason", err.code());
                let (counted, recorded) = tokio::join!(
                    mfa_challenges::count_wrong(store, &challenge),
                    events::put(store, &event)
                );
                counted?;
                recorded?;
            }
            return Err(err);
        }
    };
    let Some((user, _, database)) = read_for(state, &challenge).await? else {
        asserted.attempt.release(store).await?;
        return Err(INVALID);
    };
    let mut amr: Vec<&str> = challenge.amr.iter().map(String::as_str).collect();
    amr.extend(asserted.amr.iter().copied());
    let factor_key = crate::store::login_failures::second_factor_key(&user.id);
    let items = vec![
        asserted.used,
        mfa_challenges::consume_item(store, &challenge)?,
        asserted.attempt.succeeded_item(store)?,
        crate::store::login_failures::clear_item(store, &factor_key)?,
    ];
    let answered = Answered {
        challenge: &challenge,
        user: &user,
        database: database.as_ref(),
        amr: &amr,
        event: None,
    };
    let lost = Error::PasskeyRejected("Another request answered this challenge first.");
    conclude(state, answered, items, lost, client, now).await
}

/// A challenge whose second factor was proven, and what the answer is made of.
struct Answered<'a> {
    challenge: &'a Challenge,
    user: &'a User,
    database: Option<&'a Database>,
    amr: &'a [&'a str],
    /// What the proof itself records (a spent backup code), besides the sign-in.
    event: Option<Event>,
}

/// Writes an answered challenge in one transaction: `items` (the factor spent, the challenge used, the backoffs
/// cleared), the answer's own event (in the new session) and, unless it is a root login, the new session. When
/// another request answered first, the loss counts against the challenge and is `lost`. Then gives what the first
/// factor would have given.
async fn conclude(
    state: &State,
    answered: Answered<'_>,
    mut items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    lost: Error,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<Verified, Error> {
    let Answered {
        challenge,
        user,
        database,
        amr,
        event,
    } = answered;
    let started = match challenge.outcome {
        Outcome::Session => {
            let (mut session, refresh) = Session::start(user, amr, client, Lifetime::from_config(&state.config), now);
            session.scope_to(database);
            items.extend(session::open_items(state, user, &session, now)?);
            Some((session, refresh))
        }
        Outcome::Root => {
            items.push(session::root_sign_in_item(state, user, amr, now)?);
            None
        }
    };
    if let Some(event) = event {
        let event = match &started {
            Some((session, _)) => event.in_session(&session.id),
            None => event,
        };
        items.push(events::put_item(&state.store, &event)?);
    }
    let notice = async {
        match started {
            Some(_) => session::recent_for_notice(state, user, now).await,
            None => None,
        }
    };
    let (written, recent) = tokio::join!(state.store.transact_racing(items), notice);
    if !written? {
        mfa_challenges::count_wrong(&state.store, challenge).await?;
        return Err(lost);
    }
    match started {
        Some((session, refresh)) => {
            let mut tokens = session::opened(state, user, &session, &refresh, recent, now).await?;
            tokens.password_breached = challenge.password_breached;
            Ok(Verified::Session(Box::new(tokens)))
        }
        None => Ok(Verified::Root(session::root_token(state, user, amr, now).await?)),
    }
}

/// The challenge's user, factors and database in one strongly consistent BatchGetItem; `None` when any of them is
/// gone or no longer what the challenge was issued for (another epoch, disabled, two-factor turned off, the
/// database deleted or moved, a root login's account no longer root).
async fn read_for(
    state: &State,
    challenge: &Challenge,
) -> Result<Option<(User, SecondFactors, Option<Database>)>, Error> {
    let mut keys = vec![
        users::user_key(&challenge.user_id),
        second_factors::factors_key(&challenge.user_id),
    ];
    if let Some(db) = &challenge.db {
        keys.push(databases::database_key(db));
    }
    let mut found = state.store.batch_get(keys).await?.into_iter();
    let user = found.next().flatten().map(decode::<User>).transpose()?;
    let factors = found.next().flatten().map(decode::<SecondFactors>).transpose()?;
    let database = found.next().flatten().map(decode::<Database>).transpose()?;
    let (Some(user), Some(factors)) = (user, factors) else {
        return Ok(None);
    };
    let current = user.session_epoch == challenge.epoch
        && user.status != AccountStatus::Disabled
        && user.mfa_enabled_at.is_some()
        && (challenge.outcome != Outcome::Root || user.role == Some(Role::Root));
    let database_ok = match (&challenge.db, &database) {
        (None, _) => true,
        (Some(_), Some(db)) => user.tenant_id.as_deref() == Some(db.tenant_id.as_str()),
        (Some(_), None) => false,
    };
    Ok((current && database_ok).then_some((user, factors, database)))
}
