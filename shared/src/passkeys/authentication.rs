//! Signing in with a passkey: with an email (the account's credentials allowed), usernameless (a discoverable
//! credential names its owner), or as the second factor of a challenge. Every sign-in needs user verification, so
//! a passkey alone satisfies the second factor.

use serde::Serialize;
use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PublicKeyCredential, RequestChallengeResponse,
    WebauthnError,
};
use webauthn_rs_proto::AllowCredentials;

use super::{credential_state, decode_credential, notify, relying_party};
use crate::backoff;
use crate::clock::UnixTime;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::rate_limit;
use crate::session::{self, TokenResponse};
use crate::store::ceremonies::{self, Ceremony, Kind};
use crate::store::mfa_challenges;
use crate::store::passkeys::{self, StoredPasskey};
use crate::store::sessions::{Lifetime, Session};
use crate::store::users::{self, AccountStatus, User};
use crate::{Error, State};

/// The options of a sign-in ceremony.
#[derive(Debug, Serialize)]
pub struct LoginOptions {
    /// The ceremony to finish with the verify endpoint.
    pub ceremony_id: String,
    /// `{"publicKey": {...}}`, the argument of `navigator.credentials.get`.
    pub options: RequestChallengeResponse,
}

/// What a sign-in ceremony is for.
pub enum Purpose<'a> {
    /// A usernameless sign-in.
    Discoverable,
    /// A sign-in with the passkeys of this address's account.
    Email(&'a str),
    /// The second factor of the challenge this token names.
    Challenge(&'a str),
}

/// Starts a sign-in ceremony. For an address, the account's credentials are allowed; an address with no account
/// (or an account with no passkey, or one that cannot sign in) gets believable credential ids derived from the
/// address with a secret key, so the answer has the same shape and is stable per address, and the same reads are
/// made. For a challenge, the challenge's account's credentials are allowed (409 when it has none).
/// Round trips: the per-IP counter; for an address the marker, the user and its passkeys; for a challenge the
/// challenge and the passkeys; then the ceremony.
pub async fn login_options(
    state: &State,
    purpose: Purpose<'_>,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<LoginOptions, Error> {
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("passkey-options");
    rate_limit::check_client_ip(store, &rule, client, now).await?;
    let rp = relying_party(state)?;
    let started = |e| Error::dependency("starting a passkey sign-in", e);
    let mut backoff_key = None;
    let (kind, options, state_json, user_id, challenge) = match purpose {
        Purpose::Discoverable => {
            let (mut options, auth) = rp.start_discoverable_authentication().map_err(started)?;
            // A button, not the browser's autofill: the client may ask for conditional mediation itself.
            options.mediation = None;
            (Kind::Discoverable, options, encode(&auth)?, String::new(), None)
        }
        Purpose::Email(email) => {
            let email = Email::parse(email)?;
            backoff_key = Some(email.as_str().to_owned());
            let id = users::id_for_email(store, &email)
                .await?
                .unwrap_or_else(users::new_user_id);
            let (user, stored) = tokio::join!(users::get(store, &id), passkeys::list(store, &id));
            let usable = user?.filter(|u| u.email_verified && u.status == AccountStatus::Active);
            let credentials: Vec<Passkey> = stored?.iter().filter_map(|p| decode_credential(p).ok()).collect();
            match usable {
                Some(user) if !credentials.is_empty() => {
                    let (options, auth) = rp.start_passkey_authentication(&credentials).map_err(started)?;
                    (Kind::Login, options, encode(&auth)?, user.id, None)
                }
                _ => {
                    let (mut options, auth) = rp.start_passkey_authentication(&[]).map_err(started)?;
                    options.public_key.allow_credentials = fake_credentials(state, &email, now).await?;
                    (Kind::Login, options, encode(&auth)?, String::new(), None)
                }
            }
        }
        Purpose::Challenge(token) => {
            let challenge = mfa_challenges::get(store, token, now)
                .await?
                .ok_or(Error::InvalidToken(
                    "The challenge is invalid, used or expired; sign in again.",
                ))?;
            let credentials: Vec<Passkey> = passkeys::list(store, &challenge.user_id)
                .await?
                .iter()
                .filter_map(|p| decode_credential(p).ok())
                .collect();
            if credentials.is_empty() {
                return Err(Error::Conflict("This account has no passkey; answer with a code."));
            }
            let (options, auth) = rp.start_passkey_authentication(&credentials).map_err(started)?;
            let hash = mfa_challenges::token_hash(token);
            (
                Kind::SecondFactor,
                options,
                encode(&auth)?,
                challenge.user_id,
                Some(hash),
            )
        }
    };
    let (mut ceremony, ceremony_id) = Ceremony::new(kind, state_json, &user_id, now);
    ceremony.challenge = challenge;
    ceremony.backoff_key = backoff_key;
    ceremonies::put(store, &ceremony).await?;
    Ok(LoginOptions { ceremony_id, options })
}

fn encode<T: Serialize>(auth: &T) -> Result<String, Error> {
    serde_json::to_string(auth).map_err(|e| Error::dependency("encoding a ceremony", e))
}

/// Credential ids for an address that has none to offer, derived with a key of the data key, so they are the
/// same at every request and cannot be told from real ones.
async fn fake_credentials(state: &State, email: &Email, now: UnixTime) -> Result<Vec<AllowCredentials>, Error> {
    let keys = state.mfa_keys.get(now).await?;
    let key = keys.fake_credential_key()?;
    let generator = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(&key)
        .map_err(|e| Error::dependency("the fake credential generator", e))?;
    let ids = generator
        .generate(email.as_str().as_bytes())
        .map_err(|e| Error::dependency("the fake credential generator", e))?;
    Ok(ids
        .into_iter()
        .map(|id| AllowCredentials {
            type_: "public-key".to_owned(),
            id,
            transports: None,
        })
        .collect())
}

const INVALID_CEREMONY: Error = Error::InvalidToken("The ceremony is invalid, used or expired; start again.");
const UNKNOWN: Error = Error::PasskeyRejected("The passkey could not be verified.");

/// A verified assertion: the account, the passkey and its new state, ready to be written.
pub(crate) struct Asserted {
    /// The account.
    pub user: User,
    /// The write that records the sign-in (counter, backup flags), conditional on the counter read.
    pub used: aws_sdk_dynamodb::types::TransactWriteItem,
    /// `hwk` for a device-bound key, `swk` for a synced one, then `mfa` (the user was verified).
    pub amr: Vec<&'static str>,
    /// The claimed backoff attempt, to clear in the same transaction.
    pub attempt: backoff::Attempt,
}

/// Verifies an assertion against a ceremony taken for it. The credential's owner must be the ceremony's account
/// (or, usernameless, the account its user handle names); every refusal after the owner is known spends the
/// account's backoff, as a wrong password does. A counter that went backwards is refused and the owner told.
pub(crate) async fn assert(
    state: &State,
    ceremony: &Ceremony,
    credential: &PublicKeyCredential,
    now: UnixTime,
) -> Result<Asserted, Error> {
    let store = &state.store;
    // A sign-in with an address claims the address's backoff before anything is looked up, known or not, so a
    // stranger cannot tell an account from its backoff; the others claim their account's once it is known.
    let early = match &ceremony.backoff_key {
        Some(key) => Some(backoff::claim(store, key, now).await?),
        None => None,
    };
    let found = match owner_and_passkey(state, ceremony, credential).await {
        Ok(found) => found,
        Err(err) => {
            if let Some(attempt) = early {
                attempt.failed(store, now).await?;
            }
            return Err(err);
        }
    };
    let (user, stored) = match found {
        Some(found) => found,
        None => {
            if let Some(attempt) = early {
                attempt.failed(store, now).await?;
            }
            return Err(UNKNOWN);
        }
    };
    let attempt = match early {
        Some(attempt) => attempt,
        None => backoff::claim(store, &user.backoff_key(), now).await?,
    };
    let checked = verify_assertion(state, ceremony, credential, &stored);
    let (passkey, result) = match checked {
        Ok(verified) => verified,
        Err(err) => {
            attempt.failed(store, now).await?;
            if matches!(err, Regression) {
                tracing::warn!(passkey = %stored.id, "a passkey's signature counter went backwards");
                notify(state, &user, Mail::PasskeyCounterRegressed { name: &stored.name }).await;
            }
            return Err(UNKNOWN);
        }
    };
    if user.status == AccountStatus::Disabled {
        attempt.failed(store, now).await?;
        return Err(Error::AccountDisabled);
    }
    let (json, counter, backup_eligible, backed_up) = credential_state(&passkey)?;
    let used = passkeys::used_item(store, &stored, &json, counter, backed_up, backup_eligible, now)?;
    let mut amr = vec![if result.backup_eligible() { "swk" } else { "hwk" }];
    if result.user_verified() {
        amr.push("mfa");
    }
    Ok(Asserted {
        user,
        used,
        amr,
        attempt,
    })
}

/// Why an assertion was refused (the client is told only that it was).
enum Refusal {
    /// The counter did not move forward past the stored one: the key may have been cloned.
    Regression,
    /// Anything else.
    Invalid,
}
use Refusal::{Invalid, Regression};

/// The credential's owner and the passkey, when the credential is registered to the account the ceremony is for
/// (usernameless: the account its user handle names). Three round trips in two round-trip times.
async fn owner_and_passkey(
    state: &State,
    ceremony: &Ceremony,
    credential: &PublicKeyCredential,
) -> Result<Option<(User, StoredPasskey)>, Error> {
    let store = &state.store;
    let owner_id = match ceremony.kind {
        Kind::Discoverable => match relying_party(state)?.identify_discoverable_authentication(credential) {
            Ok((user_uuid, _)) => user_uuid.hyphenated().to_string(),
            Err(_) => return Ok(None),
        },
        _ => ceremony.user_id.clone(),
    };
    let raw_id = credential.get_credential_id().to_vec();
    let Some(owner) = passkeys::owner_of(store, &raw_id)
        .await?
        .filter(|o| !owner_id.is_empty() && o.user_id == owner_id)
    else {
        return Ok(None);
    };
    let (user, stored) = tokio::join!(
        users::get(store, &owner.user_id),
        passkeys::get(store, &owner.user_id, &owner.passkey_id)
    );
    Ok(user?.zip(stored?))
}

/// Verifies the assertion against the ceremony and the stored passkey, and returns the passkey updated by it. The
/// counter is compared with the stored one too: a ceremony's state holds the counter of when it started, and a
/// clone could answer it after the owner had signed in since.
fn verify_assertion(
    state: &State,
    ceremony: &Ceremony,
    credential: &PublicKeyCredential,
    stored: &StoredPasskey,
) -> Result<(Passkey, webauthn_rs::prelude::AuthenticationResult), Refusal> {
    let rp = relying_party(state).map_err(|_| Invalid)?;
    let mut passkey = decode_credential(stored).map_err(|_| Invalid)?;
    let verified = match ceremony.kind {
        Kind::Discoverable => {
            let auth: DiscoverableAuthentication = serde_json::from_str(&ceremony.state).map_err(|_| Invalid)?;
            rp.finish_discoverable_authentication_v2(credential, auth, &passkey)
        }
        _ => {
            let auth: PasskeyAuthentication = serde_json::from_str(&ceremony.state).map_err(|_| Invalid)?;
            rp.finish_passkey_authentication(credential, &auth)
        }
    };
    let result = match verified {
        Ok(result) if result.cred_id() == passkey.cred_id() => result,
        Err(WebauthnError::CredentialPossibleCompromise) => return Err(Regression),
        _ => return Err(Invalid),
    };
    let counter = i64::from(result.counter());
    if (counter > 0 || stored.counter > 0) && counter <= stored.counter {
        return Err(Regression);
    }
    passkey.update_credential(&result);
    Ok((passkey, result))
}

/// Finishes a passkey sign-in (with an email or usernameless) and starts a session, with `amr` `hwk` or `swk`
/// and `mfa`: user verification is required, so no second-factor challenge follows. An unverified account cannot
/// sign in (403 `email_not_verified`), and a directory account only while its directory still has it.
/// Round trips: the per-IP counter and the ceremony (a conditional delete) concurrently; the credential's owner;
/// the user and the passkey concurrently; the backoff claim; one transaction (the passkey's counter, the session,
/// the cleared backoff).
pub async fn login_verify(
    state: &State,
    ceremony_id: &str,
    credential: &PublicKeyCredential,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("passkey-login");
    let (limited, ceremony) = tokio::join!(
        rate_limit::check_client_ip(store, &rule, client, now),
        ceremonies::take(store, ceremony_id, &[Kind::Login, Kind::Discoverable], now)
    );
    limited?;
    let ceremony = ceremony?.ok_or(INVALID_CEREMONY)?;
    let asserted = assert(state, &ceremony, credential, now).await?;
    if !asserted.user.email_verified {
        asserted.attempt.failed(store, now).await?;
        return Err(Error::EmailNotVerified);
    }
    let directory_checked_at = match crate::federation::directory::vouch(state, &asserted.user, now).await {
        Ok(checked) => checked,
        Err(err) => {
            asserted.attempt.release(store).await?;
            return Err(err);
        }
    };
    let (mut session, refresh) = Session::start(
        &asserted.user,
        &asserted.amr,
        client,
        Lifetime::from_config(&state.config),
        now,
    );
    session.directory_checked_at = directory_checked_at;
    let mut items = vec![asserted.used, asserted.attempt.succeeded_item(store)?];
    items.extend(session::open_items(state, &asserted.user, &session, now)?);
    let (written, recent) = tokio::join!(
        store.transact_racing(items),
        session::recent_for_notice(state, &asserted.user, now)
    );
    if !written? {
        return Err(Error::PasskeyRejected(
            "Another sign-in used this passkey at the same moment; try again.",
        ));
    }
    session::opened(state, &asserted.user, &session, &refresh, recent, now).await
}
