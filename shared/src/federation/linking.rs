//! Linking external identities to the signed-in account, listing them, and unlinking one. A link needs a session
//! of the account; an Entra link comes back with a state that names that account and session, so nobody can make
//! a victim's session link the attacker's identity.

use super::{External, IdentityView, SsoStart};
use crate::clock::UnixTime;
use crate::mail::Mail;
use crate::store::ceremonies::Kind;
use crate::store::identities::{self, LinkedIdentity};
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::{Error, State};

/// Starts linking an Entra ID account to `user`: the entry `idp`, or else the one for the account's address
/// domain (none is 404). The state names the user and the session, and the purpose. Two round trips at most (the
/// state; a Secrets Manager read when the configuration is not cached).
pub async fn start(
    state: &State,
    user: &User,
    session: &Session,
    idp: Option<&str>,
    now: UnixTime,
) -> Result<SsoStart, Error> {
    super::require_fresh(session, now)?;
    let document = state.idps.get(now).await?;
    let entry = match idp {
        Some(id) => document.entry(id),
        None => crate::email::Email::parse(&user.email)
            .ok()
            .and_then(|email| document.for_domain(email.domain())),
    };
    super::start(
        state,
        entry.ok_or(Error::NotFound)?,
        None,
        Some((&user.id, &session.id)),
        now,
    )
    .await
}

/// Links a Google identity to `user` from a Google ID token (accepted once). One identity belongs to one
/// account: an identity linked already is 409 `conflict`. Round trips: the marker, one transaction.
pub async fn google(
    state: &State,
    user: &User,
    session: &Session,
    raw: &str,
    now: UnixTime,
) -> Result<IdentityView, Error> {
    super::require_fresh(session, now)?;
    let token = state.oidc.verify_google(&state.config, raw, now).await?;
    super::spend(state, raw, token.expires_at).await?;
    link(state, user, External::google(&token), Vec::new(), now).await
}

/// Links an Entra identity to `user` from the code and the state that `start` made for this user and session: a
/// sign-in state, another user's or another session's is 401 `invalid_token` (and used up).
/// Round trips: the state, the marker, one transaction; the code exchange at the IdP.
pub async fn entra(
    state: &State,
    user: &User,
    session: &Session,
    code: &str,
    state_id: &str,
    now: UnixTime,
) -> Result<IdentityView, Error> {
    super::require_fresh(session, now)?;
    let owner = Some((user.id.as_str(), session.id.as_str()));
    let (external, _) = super::finish(state, Kind::SsoLink, code, state_id, owner, now).await?;
    link(state, user, external, Vec::new(), now).await
}

async fn link(
    state: &State,
    user: &User,
    external: External,
    mut items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    now: UnixTime,
) -> Result<IdentityView, Error> {
    if identities::owner_of(&state.store, external.provider, &external.subject)
        .await?
        .is_some()
    {
        return Err(Error::Conflict("This identity is linked to an account already."));
    }
    let identity = LinkedIdentity::new(
        &user.id,
        external.provider,
        &external.subject,
        external.idp.as_deref(),
        external.email.as_ref().map(crate::email::Email::as_str),
        now,
    );
    items.extend(identities::link_items(&state.store, &identity)?);
    if !state.store.transact(items).await? {
        return Err(Error::Conflict("This identity is linked to an account already."));
    }
    let mail = Mail::IdentityLinked {
        provider: external.provider,
    };
    crate::account::notify_owner(state, user, mail).await;
    Ok(IdentityView::from(&identity))
}

/// The caller's linked identities, oldest first. One round trip.
pub async fn list(state: &State, user: &User) -> Result<Vec<IdentityView>, Error> {
    Ok(identities::list(&state.store, &user.id)
        .await?
        .iter()
        .map(IdentityView::from)
        .collect())
}

/// Unlinks one of the caller's identities (someone else's, or none, is 404), unless it is the account's last way
/// to sign in (409 `conflict`): no password, no passkey and no other identity; the identity of the directory that
/// provisioned the account is always its way in. Two round trips (the list, one transaction).
pub async fn unlink(state: &State, user: &User, id: &str) -> Result<(), Error> {
    let linked = identities::list(&state.store, &user.id).await?;
    let identity = linked
        .iter()
        .find(|identity| identity.id == id)
        .ok_or(Error::NotFound)?;
    let provisioning = user.idp.is_some() && identity.idp == user.idp;
    let other_way = user.password_hash.is_some() || user.passkey_count > 0 || linked.len() > 1;
    if provisioning || !other_way {
        return Err(Error::Conflict(
            "This identity is the account's last way to sign in: set a password or add a passkey first.",
        ));
    }
    if !state
        .store
        .transact(identities::unlink_items(&state.store, identity)?)
        .await?
    {
        return Err(Error::NotFound);
    }
    let provider = if identity.provider == "google" {
        "google"
    } else {
        "entra"
    };
    crate::account::notify_owner(state, user, Mail::IdentityUnlinked { provider }).await;
    Ok(())
}
