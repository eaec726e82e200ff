//! Sign-in through an LDAP or Active Directory directory: a password login for an address whose domain an `ldap`
//! entry of the identity-provider configuration is authoritative for is checked by the directory (search, then
//! bind as the entry found), never against a local password, and never falls back to one.
//!
//! The account is keyed by the directory's stable id (`entryUUID`, `objectGUID`), not by the address: the first
//! bind creates it in the entry's tenant, later binds find it by that id, and a changed address in the directory
//! moves the account's address with it (only to an address in the entry's domains, so a directory cannot vouch
//! for addresses it does not own). A refresh re-asks the directory at most every fifteen minutes per session, so a
//! person removed from it loses their sessions and tokens.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::config::{IdpDocument, IdpEntry, LdapEntry};
use super::ldap::DirectoryUser;
use crate::clock::UnixTime;
use crate::email::Email;
use crate::store::identities::{self, LinkedIdentity};
use crate::store::sessions::Session;
use crate::store::tenants as tenant_store;
use crate::store::users::{self, User};
use crate::{Error, State};

/// The provider name of directory identities.
pub const PROVIDER: &str = "ldap";

/// How often a refresh re-asks the directory whether a session's owner is still there.
pub const RECHECK_SECONDS: i64 = 900;

/// The `ldap` entry authoritative for `email`'s domain, if any.
pub fn route<'a>(document: &'a IdpDocument, email: &Email) -> Option<(&'a IdpEntry, &'a LdapEntry)> {
    let entry = document.for_domain(email.domain())?;
    Some((entry, entry.ldap()?))
}

/// Whether `email`'s domain is routed to a directory (a cached read of the configuration).
pub async fn is_routed(state: &State, email: &Email, now: UnixTime) -> Result<bool, Error> {
    let document = state.idps.get(now).await?;
    Ok(route(&document, email).is_some())
}

/// The identity subject of a directory entry: the configuration entry's id and the directory's own id, so that two
/// directories can never share an account.
fn subject(entry: &IdpEntry, found: &DirectoryUser) -> String {
    format!("{}:{}", entry.id, found.id)
}

/// The account a successful bind signs in to, and the transaction items that must be written with its session:
/// - linked (by the directory id): that account, its address moved to the directory's when that changed (unless
///   another account holds the new address, which is logged and left alone);
/// - new: a verified account without a password in the entry's tenant, with its default role, marked as the
///   entry's and linked; 409 `account_exists` when any account holds the address already (keygate never attaches
///   a directory identity to an account by address).
///
/// The address is the directory's `mail` when its domain is one of the entry's, else the one typed at login.
/// Round trips: the identity's marker, then the account (linked), or the address's marker (new); one more read of
/// the new address's marker when the directory's address changed.
pub(crate) async fn account_for(
    state: &State,
    entry: &IdpEntry,
    found: &DirectoryUser,
    typed: &Email,
    now: UnixTime,
) -> Result<(User, Vec<TransactWriteItem>), Error> {
    let store = &state.store;
    let email = found
        .email
        .as_deref()
        .and_then(|mail| Email::parse(mail).ok())
        .filter(|mail| entry.domains.iter().any(|domain| domain == mail.domain()))
        .unwrap_or_else(|| typed.clone());
    let subject = subject(entry, found);
    let mut items = Vec::new();
    if let Some(user_id) = identities::owner_of(store, PROVIDER, &subject).await? {
        let mut user = users::get(store, &user_id).await?.ok_or(Error::InvalidCredentials)?;
        // A marker names only accounts this entry made; anything else is refused like a wrong password.
        if user.idp.as_deref() != Some(entry.id.as_str()) {
            tracing::warn!(idp = %entry.id, "a directory identity names an account of another provider");
            return Err(Error::InvalidCredentials);
        }
        if user.email != email.as_str() {
            if users::id_for_email(store, &email).await?.is_some() {
                tracing::warn!(idp = %entry.id, user = %user.id, "the directory moved an address onto one another account holds; kept the old one");
            } else {
                items.extend(users::change_email_items(store, &user, &email, now)?);
                user.email = email.as_str().to_owned();
            }
        }
        return Ok((user, items));
    }
    if users::id_for_email(store, &email).await?.is_some() {
        return Err(Error::AccountExists);
    }
    let name = crate::account::clean_name(found.name.as_deref(), "name").ok().flatten();
    let mut user = User::new(users::new_user_id(), &email, name, None, None, now);
    user.email_verified = true;
    user.join(&entry.tenant_id, entry.default_role);
    user.idp = Some(entry.id.clone());
    items.push(tenant_store::exists_check_item(store, &entry.tenant_id)?);
    items.extend(users::create_items(store, &user)?);
    let link = LinkedIdentity::new(&user.id, PROVIDER, &subject, Some(&entry.id), Some(email.as_str()), now);
    items.extend(identities::link_items(store, &link)?);
    Ok((user, items))
}

/// What a refresh of a directory account's session must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recheck {
    /// Nothing: not a directory account, or asked recently.
    NotDue,
    /// The directory still has the entry: record the check with the rotation.
    Confirmed,
}

/// Re-asks the directory, at most every [`RECHECK_SECONDS`] per session, whether the owner of a directory
/// account's session is still there (see [`ask`]): gone, or its entry no longer configured, is 401
/// `session_revoked`. A session the directory did not start (a passkey, say) is asked at its first refresh.
/// Round trips when due: the account's identities, one transaction when the person is gone; the directory.
pub(crate) async fn recheck(state: &State, user: &User, session: &Session, now: UnixTime) -> Result<Recheck, Error> {
    if user.idp.is_none() {
        return Ok(Recheck::NotDue);
    }
    let last = session.directory_checked_at.unwrap_or(0);
    if now - last < RECHECK_SECONDS {
        return Ok(Recheck::NotDue);
    }
    Ok(match ask(state, user, Error::SessionRevoked, now).await? {
        Asked::NotDirectory => Recheck::NotDue,
        Asked::Present => Recheck::Confirmed,
    })
}

/// Asks the directory before a sign-in it did not judge (a passkey, an emailed code or link, a linked Google or
/// Entra identity) starts a session for a directory account, so that someone removed from the directory cannot
/// come back another way (see [`ask`]; gone is 401 `invalid_credentials`). `Some(now)` when the directory was
/// asked, for the session's [`Session::directory_checked_at`].
/// Round trips for a directory account: the account's identities, one transaction when the person is gone; the
/// directory. None otherwise.
pub(crate) async fn vouch(state: &State, user: &User, now: UnixTime) -> Result<Option<UnixTime>, Error> {
    if user.idp.is_none() {
        return Ok(None);
    }
    Ok(match ask(state, user, Error::InvalidCredentials, now).await? {
        Asked::NotDirectory => None,
        Asked::Present => Some(now),
    })
}

/// What the directory said about an account.
enum Asked {
    /// Not a directory account (an Entra one).
    NotDirectory,
    /// Its entry is there, and still matches the entry's filter.
    Present,
}

/// Asks an account's directory whether its entry is still there (and still matches the entry's `user_filter`).
/// Gone: both epochs move, so every session and token of the account stops, and the answer is `gone`. Its entry no
/// longer configured: `gone` too, without moving the epochs (a configuration mistake is undone by fixing it).
/// Unreachable: 503 `idp_unavailable`.
async fn ask(state: &State, user: &User, gone: Error, now: UnixTime) -> Result<Asked, Error> {
    let Some(idp) = user.idp.as_deref() else {
        return Ok(Asked::NotDirectory);
    };
    let document = state.idps.get(now).await?;
    let configured = match document.entry(idp).map(|entry| (entry, entry.ldap())) {
        Some((entry, Some(ldap))) => Some((entry, ldap)),
        // Entra accounts are not asked here.
        Some((_, None)) => return Ok(Asked::NotDirectory),
        None => None,
    };
    let linked = identities::list(&state.store, &user.id)
        .await?
        .into_iter()
        .find(|identity| identity.provider == PROVIDER);
    let Some((entry, ldap)) = configured else {
        if linked.is_none() {
            return Ok(Asked::NotDirectory);
        }
        // Its directory is no longer configured: nobody can vouch for the account now.
        tracing::warn!(idp, "a directory account's entry is no longer configured; refusing it");
        return Err(gone);
    };
    let prefix = format!("{}:", entry.id);
    let directory_id = linked.and_then(|identity| identity.subject.strip_prefix(&prefix).map(str::to_owned));
    let still_there = match directory_id {
        Some(id) => state.directories.find(&entry.id, ldap, &id).await?.is_some(),
        None => false,
    };
    if still_there {
        return Ok(Asked::Present);
    }
    tracing::info!(idp, user = %user.id, "the directory no longer has this account; ending its sessions and tokens");
    let item = users::end_everything_item(&state.store, user, now)?;
    if !state.store.transact(vec![item]).await? {
        tracing::info!(user = %user.id, "the account changed while its directory entry was found gone");
    }
    Err(gone)
}
