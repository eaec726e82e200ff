//! Managing a tenant's accounts: listing and reading them, changing a role, a name or a status, and deleting an
//! account with everything it owns. Every action is inside the caller's tenant (another tenant's account is 404,
//! exactly as a missing one) and under the rule of who may act on whom ([`roles::may_act_on`], 403
//! `insufficient_scope`), decided on a strongly consistent read of both accounts.

use base64::Engine as _;
use serde::Serialize;

use crate::auth::Principal;
use crate::clock::{rfc3339, UnixTime};
use crate::mail::Mail;
use crate::passwords::{self, Verified};
use crate::store::accounts::{self, Account, Change};
use crate::store::events::{self, Event, Kind};
use crate::store::users::{AccountKind, AccountStatus, User};
use crate::store::{databases, login_failures, tenants};
use crate::tenancy::roles::{self, Role};
use crate::{account, backoff, Error, State};

/// An account as managers see it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// `individual` or `service`.
    pub kind: AccountKind,
    /// An individual account's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A service account's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Role in the tenant.
    pub role: Option<Role>,
    /// `invited`, `active` or `disabled`.
    pub status: AccountStatus,
    /// Set while a deletion is under way (the account is already disabled).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&Account> for AccountView {
    fn from(account: &Account) -> Self {
        let user = &account.user;
        Self {
            id: user.id.clone(),
            kind: user.kind,
            email: (user.kind == AccountKind::Individual && !user.email.is_empty()).then(|| user.email.clone()),
            service_name: user.service_name.clone(),
            name: user.name.clone(),
            role: user.role,
            status: user.status,
            deleting: account.deleting,
            created_at: rfc3339(user.created_at),
        }
    }
}

impl From<&User> for AccountView {
    /// An account no deletion has started on (one just created, say).
    fn from(user: &User) -> Self {
        Self::from(&Account {
            user: user.clone(),
            deleting: false,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Serialize)]
pub struct AccountPage {
    /// The accounts, in creation order.
    pub items: Vec<AccountView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The default and largest page sizes.
pub const DEFAULT_LIMIT: i32 = 50;
/// The largest page size.
pub const MAX_LIMIT: i32 = 100;

/// The key an account's failed logins are counted under: the same one its logins count under
/// ([`User::backoff_key`]), so clearing it lifts exactly the backoff that holds.
fn failures_key(user: &User) -> String {
    user.backoff_key()
}

/// The service-name marker of a service account (`SERVICE#<tenant>#<service_name>` / `USER`).
fn service_marker(user: &User) -> Option<String> {
    match (user.kind, &user.tenant_id, &user.service_name) {
        (AccountKind::Service, Some(tenant), Some(name)) => Some(format!("SERVICE#{tenant}#{name}")),
        _ => None,
    }
}

/// The cursor of the page after the account with GSI1 sort key `sort`: base64url of `<tenant id>\n<sort key>`,
/// so a cursor names the tenant it was made for and is refused in any other.
fn encode_cursor(tenant_id: &str, sort: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tenant_id}\n{sort}"))
}

/// The sort key a cursor continues after; 422 `invalid_field` for a malformed cursor or one of another tenant.
fn decode_cursor(tenant_id: &str, cursor: &str) -> Result<String, Error> {
    let invalid = || Error::InvalidField("cursor is not a cursor this listing gave.".to_owned());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (tenant, sort) = text.split_once('\n').ok_or_else(invalid)?;
    let well_formed = sort
        .split_once('#')
        .is_some_and(|(at, id)| at.len() == 12 && at.bytes().all(|b| b.is_ascii_digit()) && is_account_id(id));
    if tenant != tenant_id || !well_formed {
        return Err(invalid());
    }
    Ok(sort.to_owned())
}

/// Parses `?limit=`: 1 to 100, default 50 (422 otherwise).
pub fn parse_limit(raw: Option<&str>) -> Result<i32, Error> {
    let Some(raw) = raw else { return Ok(DEFAULT_LIMIT) };
    raw.parse::<i32>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| Error::InvalidField(format!("limit must be a whole number from 1 to {MAX_LIMIT}.")))
}

/// Whether `id` has the shape of an account id (a UUID), so anything else is 404 without a read.
fn is_account_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// One page of the caller's tenant's accounts, in creation order. One round trip (a GSI query: display only).
pub async fn list(state: &State, caller: &User, limit: i32, cursor: Option<&str>) -> Result<AccountPage, Error> {
    let tenant = caller.tenant_id.as_deref().ok_or(Error::NotFound)?;
    let after = cursor.map(|c| decode_cursor(tenant, c)).transpose()?;
    let (found, next) = accounts::page(&state.store, tenant, limit, after.as_deref()).await?;
    Ok(AccountPage {
        items: found.iter().map(AccountView::from).collect(),
        next_cursor: next.map(|sort| encode_cursor(tenant, &sort)),
    })
}

/// An account of the caller's tenant, read strongly consistently; 404 for a missing one and for another tenant's.
/// One round trip.
pub async fn find(state: &State, caller: &User, id: &str) -> Result<Account, Error> {
    let tenant = caller.tenant_id.as_deref().ok_or(Error::NotFound)?;
    if !is_account_id(id) {
        return Err(Error::NotFound);
    }
    accounts::get(&state.store, id)
        .await?
        .filter(|account| account.user.tenant_id.as_deref() == Some(tenant))
        .ok_or(Error::NotFound)
}

/// 403 `insufficient_scope` unless `caller` ranks strictly above `target` (so nobody acts on root, nor on an
/// equal, nor on itself).
pub fn check_may_act(caller: &User, target: Role) -> Result<(), Error> {
    match caller.role {
        Some(actor) if roles::may_act_on(actor, target) => Ok(()),
        _ => Err(Error::InsufficientScope(
            "Your role may only manage accounts whose role ranks below it.",
        )),
    }
}

/// A manager's change to an account, as the request asked it.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    /// The new role.
    pub role: Option<Role>,
    /// The new display name (`Some(None)` removes it).
    pub name: Option<Option<String>>,
    /// `active` or `disabled`.
    pub status: Option<AccountStatus>,
}

/// Changes an account of the caller's tenant under the rule of who may act on whom (on its current role and on
/// the new one, so nobody can make a root or a peer). A demotion moves the account to a new session epoch (its
/// JWTs carry the old role; its PATs are narrowed at use); a disable moves both epochs (DESIGN §5). `active` on a
/// service account also clears its failed logins (`LOGINFAIL#svc:<tenant>:<name>`), even when it is active. An invited account's status is its invitation's business.
/// Two round trips: the account, then one conditional transaction (409 `conflict` when the account changed
/// meanwhile); none written when nothing changes.
pub async fn update(
    state: &State,
    principal: &Principal,
    id: &str,
    patch: Patch,
    now: UnixTime,
) -> Result<AccountView, Error> {
    let caller = &principal.user;
    let mut account = find(state, caller, id).await?;
    if account.deleting {
        return Err(Error::NotFound);
    }
    let target = &account.user;
    let current = target.role.ok_or(Error::NotFound)?;
    check_may_act(caller, current)?;
    if let Some(role) = patch.role {
        check_may_act(caller, role)?;
    }
    if patch.status.is_some() && target.status == AccountStatus::Invited {
        return Err(Error::InvalidField(
            "An invited account becomes active by accepting its invitation; delete it to withdraw the invitation."
                .to_owned(),
        ));
    }
    let role = patch.role.filter(|role| *role != current);
    let status = patch.status.filter(|status| *status != target.status);
    let name = patch.name.filter(|name| *name != target.name);
    let disabling = status == Some(AccountStatus::Disabled);
    let change = Change {
        role,
        name,
        status,
        bump_sessions: disabling || role.is_some_and(|role| role.rank() < current.rank()),
        bump_tokens: disabling,
    };
    // Asking for `active` clears a service account's failed logins even when it is active already: that is how a
    // manager lifts its backoff (it has no address to prove).
    let clear_failures = patch.status == Some(AccountStatus::Active) && target.kind == AccountKind::Service;
    if change.role.is_none() && change.name.is_none() && change.status.is_none() && !clear_failures {
        return Ok(AccountView::from(&account));
    }
    let mut items = vec![accounts::change_item(&state.store, target, &change, now)?];
    if clear_failures {
        items.push(login_failures::clear_item(&state.store, &failures_key(target))?);
    }
    let event = |kind| crate::events::by(Event::new(kind, target, now, state.config.event_retention), principal);
    if let Some(role) = change.role {
        let changed = event(Kind::RoleChanged)
            .with("from", current.as_str())
            .with("to", role.as_str());
        items.push(events::put_item(&state.store, &changed)?);
    }
    match change.status {
        Some(AccountStatus::Disabled) => items.push(events::put_item(&state.store, &event(Kind::AccountDisabled))?),
        Some(AccountStatus::Active) => items.push(events::put_item(&state.store, &event(Kind::AccountEnabled))?),
        _ => {}
    }
    if !state.store.transact(items).await? {
        return Err(Error::Conflict(
            "The account changed meanwhile; read it again and retry.",
        ));
    }
    let user = &mut account.user;
    if let Some(role) = change.role {
        user.role = Some(role);
    }
    if let Some(status) = change.status {
        user.status = status;
    }
    if let Some(name) = change.name {
        user.name = name;
    }
    Ok(AccountView::from(&account))
}

/// How far a deletion got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The account and everything it owned are gone (204).
    Done,
    /// The account is disabled and partly removed; call again to continue (202).
    Ongoing,
}

/// An account of the caller's tenant that the caller may act on (ranked strictly below it) and that no deletion
/// has started on: 404 for a missing one, another tenant's or one being deleted, 403 `insufficient_scope` for
/// one the caller may not act on. One round trip.
pub async fn find_managed(state: &State, caller: &User, id: &str) -> Result<User, Error> {
    let account = find(state, caller, id).await?;
    if account.deleting {
        return Err(Error::NotFound);
    }
    check_may_act(caller, account.user.role.ok_or(Error::NotFound)?)?;
    Ok(account.user)
}

/// A service account the caller manages ([`find_managed`]), whose tokens the caller may list, mint and revoke:
/// 422 `invalid_field` for an individual account (it makes its own). One round trip.
pub async fn find_managed_service(state: &State, caller: &User, id: &str) -> Result<User, Error> {
    let user = find_managed(state, caller, id).await?;
    if user.kind != AccountKind::Service {
        return Err(Error::InvalidField(
            "Tokens are managed here only for service accounts; a person makes their own.".to_owned(),
        ));
    }
    Ok(user)
}

/// Deletes an account of the caller's tenant (never root: nobody may act on it) and everything it owns. The
/// first call marks it deleting, which disables it and moves both epochs, so every credential fails at once; then
/// its items go in batches, at most `max_batches` BatchWriteItem calls per call ([`accounts::purge`]). A call that
/// runs out answers [`Deletion::Ongoing`], and the next call continues where it stopped; the user item and its
/// markers go last, in one transaction, with the one `account_deleted` event that outlives the account.
/// Round trips: the account, the mark (first call only), the purge's queries and batches, then the marker read
/// and the final transaction.
pub async fn delete(
    state: &State,
    caller: &User,
    id: &str,
    max_batches: usize,
    now: UnixTime,
) -> Result<Deletion, Error> {
    let account = find(state, caller, id).await?;
    check_may_act(caller, account.user.role.ok_or(Error::NotFound)?)?;
    let deletion = remove(state, &caller.id, &account, max_batches, Vec::new(), now).await?;
    // An invited account never held its address: the notice would reach whoever does.
    if deletion == Deletion::Done && account.user.status != AccountStatus::Invited {
        account::notify_owner(state, &account.user, Mail::AccountDeleted).await;
    }
    Ok(deletion)
}

/// The most BatchWriteItem calls a self-deletion spends: it cannot be resumed by its owner, whose credentials end
/// at the first step, so it goes as far as a person's items reach (2,500 of them) within API Gateway's 30 seconds.
const OWN_DELETION_BATCHES: usize = 100;

/// Proof that the owner of a session means to delete the account.
#[derive(Debug)]
pub enum OwnerProof {
    /// The account's password.
    Password(secrecy::SecretString),
    /// Nothing: enough only for an account without a password, from a sign-in at most five minutes old.
    Fresh,
}

/// Deletes the caller's own account and everything it owns (`DELETE /v1/auth/me`). The password is checked (and
/// guesses spend the account's backoff), or, for an account without one, the session must be at most five minutes
/// old. Root must transfer the tenant first while it has other accounts (409 `transfer_root_first`); root as the
/// last account deletes the tenant and its databases with it. [`Deletion::Ongoing`] only past 2,500 items: an
/// administrator's `DELETE /v1/accounts/{id}` finishes it.
/// Round trips: the backoff claim with a password, the tenant's accounts (root only: GSI), the account, the mark,
/// the purge, each database's delete (root only), the marker read and the final transaction.
pub async fn delete_own(
    state: &State,
    user: &User,
    session: &crate::store::sessions::Session,
    proof: OwnerProof,
    now: UnixTime,
) -> Result<Deletion, Error> {
    let store = &state.store;
    match (&user.password_hash, proof) {
        (Some(hash), OwnerProof::Password(password)) => {
            let attempt = match user.kind {
                AccountKind::Individual => backoff::claim(store, &user.backoff_key(), now).await?,
                AccountKind::Service => backoff::claim_without_lock(store, &user.backoff_key(), now).await?,
            };
            if passwords::verify(&password, Some(hash)).await? == Verified::No {
                attempt.failed(store, now).await?;
                return Err(Error::WrongPassword);
            }
            attempt.release(store).await?;
        }
        (Some(_), OwnerProof::Fresh) => {
            return Err(Error::InvalidRequest(
                "The request is invalid: missing field `password`.".to_owned(),
            ))
        }
        (None, _) if now - session.created_at > account::REAUTHENTICATION_WINDOW_SECONDS => {
            return Err(Error::ReauthenticationRequired)
        }
        (None, _) => {}
    }
    let mut extra = Vec::new();
    let root_of = match (user.role, &user.tenant_id) {
        (Some(Role::Root), Some(tenant_id)) => Some(tenant_id.clone()),
        _ => None,
    };
    if let Some(tenant_id) = &root_of {
        let (others, _) = accounts::page(store, tenant_id, 2, None).await?;
        if others.iter().any(|other| other.user.id != user.id) {
            return Err(Error::TransferRootFirst);
        }
        if let Some(tenant) = tenants::get(store, tenant_id).await? {
            extra.extend(tenants::delete_items(store, &tenant)?);
        }
    }
    let mut account = accounts::get(store, &user.id).await?.ok_or(Error::NotFound)?;
    if let Some(tenant_id) = &root_of {
        if !account.deleting {
            if !accounts::mark_deleting(store, &account.user, now).await? {
                return Err(Error::Conflict("The account changed meanwhile; try again."));
            }
            account.deleting = true;
        }
        // The databases go before the account, so a failure leaves a deleting root that can be finished, never a
        // database without a tenant.
        for database in databases::list(store, tenant_id).await? {
            store
                .transact_racing(Vec::from(databases::delete_items(store, &database)?))
                .await?;
        }
    }
    let deletion = remove(state, &user.id, &account, OWN_DELETION_BATCHES, extra, now).await?;
    if deletion == Deletion::Done {
        account::notify_owner(state, user, Mail::AccountDeleted).await;
    }
    Ok(deletion)
}

/// The steps every deletion shares: mark (unless marked), purge, then the user item, its markers, the
/// `account_deleted` event (the actor and the target's id only: no address, name or IP) and `extra` in one
/// transaction.
async fn remove(
    state: &State,
    actor_id: &str,
    account: &Account,
    max_batches: usize,
    extra: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    now: UnixTime,
) -> Result<Deletion, Error> {
    let store = &state.store;
    let target = &account.user;
    if !account.deleting && !accounts::mark_deleting(store, target, now).await? {
        return Err(Error::Conflict("The account changed meanwhile; try again."));
    }
    if !accounts::purge(store, target, &failures_key(target), max_batches).await? {
        return Ok(Deletion::Ongoing);
    }
    // The one event a deleted account leaves: who and when, nothing that says who the person was.
    let event = Event::new(Kind::AccountDeleted, target, now, state.config.event_retention)
        .by(actor_id)
        .anonymous();
    let mut items = vec![events::put_item(store, &event)?];
    items.extend(extra);
    if !accounts::finish(store, target, service_marker(target), items).await? {
        return Err(Error::Conflict("The account changed meanwhile; try again."));
    }
    Ok(Deletion::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_bound_to_their_tenant() {
        let sort = "000000000100#0b1f6a1e-9c1f-4d7a-8d2e-2a3b4c5d6e7f";
        let cursor = encode_cursor("tenant-a", sort);
        assert_eq!(decode_cursor("tenant-a", &cursor).unwrap(), sort);
        assert_eq!(decode_cursor("tenant-b", &cursor).unwrap_err().code(), "invalid_field");
        for bad in ["", "!!", "dGVuYW50LWE", &encode_cursor("tenant-a", "1#x")] {
            assert_eq!(
                decode_cursor("tenant-a", bad).unwrap_err().code(),
                "invalid_field",
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "x", ""] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_accounts_count_failures_under_their_tenant_and_name() {}
}
