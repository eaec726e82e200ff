//! Passkeys (WebAuthn, through webauthn-rs): [`registration`] adds one to a signed-in account, [`authentication`]
//! signs in with one (with an email, usernameless, or as the second factor of a challenge), and this module lists,
//! renames and removes them. Ceremony state lives in DynamoDB ([`crate::store::ceremonies`]).

pub mod authentication;
pub mod registration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use webauthn_rs::prelude::{Passkey, Webauthn, WebauthnError};

pub(crate) use crate::account::notify_owner as notify;
use crate::clock::{rfc3339, UnixTime};
use crate::mail::Mail;
use crate::store::events::{self, Event, Kind};
use crate::store::passkeys::{self, StoredPasskey};
use crate::store::users::{self, User};
use crate::{Error, State};

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A passkey as its owner sees it.
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    /// keygate's id of the passkey.
    pub id: String,
    /// The owner's label.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, the last sign-in with it.
    pub last_used_at: Option<String>,
    /// Whether the credential may be synced to other devices.
    pub backup_eligible: bool,
    /// Whether it is synced now.
    pub backed_up: bool,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(passkey: &StoredPasskey) -> Self {
        Self {
            id: passkey.id.clone(),
            name: passkey.name.clone(),
            created_at: rfc3339(passkey.created_at),
            last_used_at: passkey.last_used_at.map(rfc3339),
            backup_eligible: passkey.backup_eligible,
            backed_up: passkey.backed_up,
        }
    }
}

/// Checks a passkey name: trimmed, 1 to 64 characters, no control characters.
pub fn check_name(raw: &str) -> Result<String, Error> {
    match crate::account::clean_name(Some(raw), "name")? {
        Some(name) if name.chars().count() <= MAX_NAME_CHARS => Ok(name),
        _ => Err(Error::InvalidField(format!(
            "name must be 1 to {MAX_NAME_CHARS} printable characters."
        ))),
    }
}

/// The relying party of this deployment.
pub(crate) fn relying_party(state: &State) -> Result<Webauthn, Error> {
    state
        .config
        .webauthn
        .relying_party()
        .map_err(|err| Error::dependency("building the WebAuthn relying party", err))
}

/// The string form of a credential id: base64url without padding, as browsers show it.
pub(crate) fn credential_id_text(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// A passkey's signature counter and backup flags, which webauthn-rs keeps without getters.
pub(crate) fn credential_state(passkey: &Passkey) -> Result<(String, i64, bool, bool), Error> {
    let json = serde_json::to_string(passkey).map_err(|e| Error::dependency("encoding a passkey", e))?;
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| Error::dependency("encoding a passkey", e))?;
    let cred = &value["cred"];
    Ok((
        json,
        cred["counter"].as_i64().unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
    ))
}

/// The webauthn-rs passkey a stored one holds.
pub(crate) fn decode_credential(stored: &StoredPasskey) -> Result<Passkey, Error> {
    serde_json::from_str(&stored.credential).map_err(|e| Error::dependency("decoding a stored passkey", e))
}

/// Why a ceremony's credential was refused, as the client may be told.
pub(crate) fn rejection(err: &WebauthnError) -> &'static str {
    match err {
        WebauthnError::InvalidRPOrigin | WebauthnError::CredentialCrossOrigin => {
            "The credential was made for another origin."
        }
        WebauthnError::InvalidRPIDHash => "The credential was made for another relying party.",
        WebauthnError::UserNotVerified | WebauthnError::UserNotPresent => "The authenticator did not verify the user.",
        WebauthnError::MismatchedChallenge => "The credential answers another challenge.",
        WebauthnError::CredentialPossibleCompromise => "The passkey's signature counter went backwards.",
        _ => "The passkey could not be verified.",
    }
}

/// The caller's passkeys, oldest first. One round trip.
pub async fn list(state: &State, user: &User) -> Result<Vec<PasskeyView>, Error> {
    Ok(passkeys::list(&state.store, &user.id)
        .await?
        .iter()
        .map(PasskeyView::from)
        .collect())
}

/// Renames one of the caller's passkeys; another account's (or none) is 404. One round trip.
pub async fn rename(state: &State, user: &User, id: &str, name: &str) -> Result<PasskeyView, Error> {
    let name = check_name(name)?;
    if !users::is_id(id) {
        return Err(Error::NotFound);
    }
    passkeys::rename(&state.store, &user.id, id, &name)
        .await?
        .map(|p| PasskeyView::from(&p))
        .ok_or(Error::NotFound)
}

/// Removes one of the caller's passkeys and its credential id from session `session_id`, recording the
/// `passkey_removed` event with them, and tells the owner; another account's (or none) is 404. Two round trips (the
/// passkey, one transaction with the account's passkey count and the event) and one SQS call.
pub async fn delete(state: &State, user: &User, session_id: &str, id: &str, now: UnixTime) -> Result<(), Error> {
    if !users::is_id(id) {
        return Err(Error::NotFound);
    }
    let stored = passkeys::get(&state.store, &user.id, id)
        .await?
        .ok_or(Error::NotFound)?;
    let raw = URL_SAFE_NO_PAD
        .decode(&stored.credential_id)
        .map_err(|e| Error::dependency("decoding a stored credential id", e))?;
    let mut items = passkeys::delete_items(&state.store, &stored, &raw)?;
    items.push(users::passkey_removed_item(&state.store, &user.id)?);
    let event = Event::new(Kind::PasskeyRemoved, user, now, state.config.event_retention)
        .in_session(session_id)
        .with("passkey_id", &stored.id)
        .with("name", &stored.name);
    items.push(events::put_item(&state.store, &event)?);
    if !state.store.transact(items).await? {
        return Err(Error::NotFound);
    }
    notify(state, user, Mail::PasskeyRemoved { name: &stored.name }).await;
    Ok(())
}
