//! Admin operations called by back-office services: who may call them, and what they do to an account. Every
//! operation acts inside the caller's tenant under the rule of who may act on whom
//! ([`crate::tenancy::accounts::find_managed`]: another tenant's ids are 404, a peer or a higher role 403), and
//! writes its event in the same transaction as its change.

use secrecy::SecretString;

use crate::auth::{Credential, Principal};
use crate::clock::UnixTime;
use crate::mail::Mail;
use crate::store::accounts as store_accounts;
use crate::store::events::{self, Event, Kind};
use crate::store::users::{AccountKind, AccountStatus, User};
use crate::store::{passkeys, second_factors};
use crate::tenancy::accounts::{self, Deletion};
use crate::{account, passwords, Error, State};

/// The scope every admin operation needs.
pub const ADMIN_SCOPE: &str = "admin:users";

/// 403 `insufficient_scope` unless the caller is a back-office service carrying `admin:users`: a service
/// account's JWT, or a PAT (only root and managers hold that scope; a PAT's previous secret, in its rotation grace
/// period, never carries it). A person's own session is refused even when its role has the scope: these calls
/// belong to back-office tools, which hold credentials made for them, not to a browser.
pub fn require_service(caller: &Principal) -> Result<(), Error> {
    let service = match caller.credential {
        Credential::Pat { .. } => true,
        Credential::Session(_) | Credential::Root => caller.kind() == AccountKind::Service,
    };
    if service && caller.has_scope(ADMIN_SCOPE) {
        Ok(())
    } else {
        Err(Error::InsufficientScope(
            "This operation is for back-office services: a service account's token or a PAT with admin:users.",
        ))
    }
}

/// An invited account has no password or factor of its own yet: accepting the invitation sets them.
fn refuse_invited(target: &User) -> Result<(), Error> {
    if target.status == AccountStatus::Invited {
        return Err(Error::InvalidField(
            "An invited account sets its password by accepting its invitation; delete it to withdraw it.".to_owned(),
        ));
    }
    Ok(())
}

fn event(state: &State, kind: Kind, caller: &Principal, target: &User, now: UnixTime) -> Event {
    crate::events::by(Event::new(kind, target, now, state.config.event_retention), caller)
}

/// Sets the password of an account the caller manages, policy-checked as any new password, and moves both of
/// its epochs so that its sessions and PATs stop at once. An account provisioned by Entra ID or LDAP refuses (409
/// `password_managed_externally`). An individual is emailed a notice.
/// Round trips: the account, then one transaction (the password, the event, and dropping the login copy on the
/// address's marker); one SQS call.
pub async fn set_password(
    state: &State,
    caller: &Principal,
    user_id: &str,
    new: &SecretString,
    now: UnixTime,
) -> Result<(), Error> {
    let target = accounts::find_managed(state, &caller.user, user_id).await?;
    refuse_invited(&target)?;
    if target.idp.is_some() {
        return Err(Error::PasswordManagedExternally);
    }
    account::check_new_password(state, new).await?;
    let hash = passwords::hash(new).await?;
    let store = &state.store;
    let items = vec![
        store_accounts::set_password_item(store, &target, &hash, now)?,
        events::put_item(store, &event(state, Kind::PasswordSetByAdmin, caller, &target, now))?,
    ];
    if !crate::store::users::transact_dropping_copy(store, items, &target).await? {
        return Err(Error::Conflict("The account changed meanwhile; try again."));
    }
    account::notify_owner(state, &target, Mail::PasswordSetByAdmin).await;
    Ok(())
}

/// Removes every second factor of an account the caller manages (TOTP, backup codes, a pending enrolment, every
/// passkey with its credential marker) and moves its session epoch, for a user who lost their devices. The
/// account then signs in with its first factor alone. An individual is emailed a notice.
/// Round trips: the account, its passkeys (one query), then one transaction; one SQS call.
pub async fn reset_second_factors(
    state: &State,
    caller: &Principal,
    user_id: &str,
    now: UnixTime,
) -> Result<(), Error> {
    let target = accounts::find_managed(state, &caller.user, user_id).await?;
    refuse_invited(&target)?;
    let store = &state.store;
    let mut items = second_factors::remove_all_items(store, &target.id)?;
    for passkey in passkeys::list(store, &target.id).await? {
        items.extend(passkeys::delete_all_items(store, &passkey)?);
    }
    items.push(store_accounts::reset_second_factors_item(store, &target, now)?);
    items.push(events::put_item(
        store,
        &event(state, Kind::SecondFactorsReset, caller, &target, now),
    )?);
    if !store.transact(items).await? {
        return Err(Error::Conflict("The account changed meanwhile; try again."));
    }
    account::notify_owner(state, &target, Mail::SecondFactorsReset).await;
    Ok(())
}

/// Deletes an account the caller manages and everything it owns, with the resumable contract of
/// `DELETE /v1/accounts/{id}` ([`accounts::delete`]).
pub async fn delete_user(
    state: &State,
    caller: &Principal,
    user_id: &str,
    max_batches: usize,
    now: UnixTime,
) -> Result<Deletion, Error> {
    accounts::delete(state, &caller.user, user_id, max_batches, now).await
}
