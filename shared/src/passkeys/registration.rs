//! Adding a passkey to a signed-in account.

use serde::Serialize;
use webauthn_rs::prelude::{CreationChallengeResponse, PasskeyRegistration, RegisterPublicKeyCredential, Uuid};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::{credential_id_text, credential_state, notify, relying_party, PasskeyView};
use crate::clock::UnixTime;
use crate::mail::Mail;
use crate::store::ceremonies::{self, Ceremony, Kind};
use crate::store::events::{self, Event, Kind as EventKind};
use crate::store::passkeys::{self, StoredPasskey};
use crate::store::sessions::Session;
use crate::store::users::{self, AccountKind, User};
use crate::{Error, State};

/// The options of a registration ceremony.
#[derive(Debug, Serialize)]
pub struct RegistrationOptions {
    /// The ceremony to finish with `/v1/auth/passkey/register/verify`.
    pub ceremony_id: String,
    /// `{"publicKey": {...}}`, the argument of `navigator.credentials.create` (WebAuthn Level 3 JSON).
    pub options: CreationChallengeResponse,
}

/// Starts registering a passkey for the caller: user verification required, a discoverable credential preferred
/// (so usernameless sign-in works where the authenticator can store one), the caller's credentials excluded. A
/// passkey signs in on its own and outlives a password reset, so a stolen session must not be able to add one:
/// the session must have signed in at most five minutes ago (403 `reauthentication_required`), and only it can
/// finish the ceremony. Two round trips (the caller's passkeys, the ceremony).
pub async fn options(
    state: &State,
    user: &User,
    session: &Session,
    now: UnixTime,
) -> Result<RegistrationOptions, Error> {
    if user.kind != AccountKind::Individual {
        return Err(Error::InsufficientRole(
            "Service accounts sign in with a secret and have no passkeys.",
        ));
    }
    if now - session.created_at > crate::account::REAUTHENTICATION_WINDOW_SECONDS {
        return Err(Error::ReauthenticationRequired);
    }
    let existing = passkeys::list(&state.store, &user.id).await?;
    let exclude = existing
        .iter()
        .filter_map(|p| super::decode_credential(p).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let user_uuid = Uuid::parse_str(&user.id).map_err(|e| Error::dependency("a user id that is not a UUID", e))?;
    let display = user.name.as_deref().unwrap_or(&user.email);
    let (mut options, registration) = relying_party(state)?
        .start_passkey_registration(user_uuid, &user.email, display, Some(exclude))
        .map_err(|e| Error::dependency("starting a passkey registration", e))?;
    // webauthn-rs asks for "discouraged"; finishing ignores the field, so preferring a resident key is safe.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
    }
    let state_json = serde_json::to_string(&registration).map_err(|e| Error::dependency("encoding a ceremony", e))?;
    let (mut ceremony, ceremony_id) = Ceremony::new(Kind::Register, state_json, &user.id, now);
    ceremony.session_id = Some(session.id.clone());
    ceremonies::put(&state.store, &ceremony).await?;
    Ok(RegistrationOptions { ceremony_id, options })
}

/// Most passkeys an account can have: each is stored in every sign-in ceremony's state, and each add emails the
/// owner, so the list must stay small.
pub const MAX_PASSKEYS: i64 = 20;

const INVALID_CEREMONY: Error = Error::InvalidToken("The ceremony is invalid, used or expired; start again.");

/// Finishes a registration: the credential must answer this ceremony's challenge from an allowed origin, for this
/// relying party, with the user verified. A credential id registered to any account is 409. The `passkey_added`
/// event is recorded with the passkey, and the owner is told by email. Two round trips (take the ceremony, one
/// transaction: the passkey, its credential marker, the account's passkey count, the event), and one SQS call.
pub async fn verify(
    state: &State,
    user: &User,
    session: &Session,
    ceremony_id: &str,
    credential: &RegisterPublicKeyCredential,
    name: Option<&str>,
    now: UnixTime,
) -> Result<PasskeyView, Error> {
    let name = match name {
        Some(name) => super::check_name(name)?,
        None => crate::session::device_label(session.user_agent.as_deref()),
    };
    let ceremony = ceremonies::take(&state.store, ceremony_id, &[Kind::Register], now)
        .await?
        .filter(|c| c.user_id == user.id && c.session_id.as_deref() == Some(session.id.as_str()))
        .ok_or(INVALID_CEREMONY)?;
    let registration: PasskeyRegistration =
        serde_json::from_str(&ceremony.state).map_err(|e| Error::dependency("decoding a ceremony", e))?;
    let passkey = relying_party(state)?
        .finish_passkey_registration(credential, &registration)
        .map_err(|err| Error::InvalidPasskey(super::rejection(&err)));
    let passkey = match passkey {
        Ok(passkey) => passkey,
        // What webauthn-rs answers for a credential the exclusion list named (the caller's own), and for an
        // algorithm that was not offered: only the first is a conflict.
        Err(err) => {
            return Err(
                match passkeys::owner_of(&state.store, credential.raw_id.as_ref()).await? {
                    Some(_) => Error::PasskeyAlreadyRegistered,
                    None => err,
                },
            )
        }
    };
    let raw = passkey.cred_id().clone();
    let (json, counter, backup_eligible, backed_up) = credential_state(&passkey)?;
    let stored = StoredPasskey::new(
        users::new_user_id(),
        &user.id,
        name,
        credential_id_text(&raw),
        json,
        counter,
        backup_eligible,
        backed_up,
        now,
    );
    let mut items = passkeys::create_items(&state.store, &stored, &raw)?;
    items.push(users::passkey_added_item(&state.store, &user.id, MAX_PASSKEYS)?);
    let event = Event::new(EventKind::PasskeyAdded, user, now, state.config.event_retention)
        .in_session(&session.id)
        .with("passkey_id", &stored.id)
        .with("name", &stored.name);
    // Last, so that the failed positions below keep naming the marker and the count.
    items.push(events::put_item(&state.store, &event)?);
    match state.store.transact_outcome(items).await?.as_slice() {
        [] => {}
        // The credential marker: another account (or this one) registered the credential.
        [0] => return Err(Error::PasskeyAlreadyRegistered),
        [2] => {
            return Err(Error::Conflict(
                "An account can have at most 20 passkeys; remove one first.",
            ))
        }
        _ => return Err(Error::Conflict("The account changed meanwhile; try again.")),
    }
    notify(state, user, Mail::PasskeyAdded { name: &stored.name }).await;
    Ok(PasskeyView::from(&stored))
}
