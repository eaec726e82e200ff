//! Tenants: naming a new one, deriving its unique slug, creating it with its root in the same transaction as
//! the sign-in that needs it, reading and renaming it.

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::clock::UnixTime;
use crate::store::events::{self, Event, Kind};
use crate::store::tenants::{self, SLUG_MARKER_INDEX};
use crate::store::users::{self, User};
use crate::store::Store;
use crate::tenancy::Role;
use crate::Error;

pub use crate::store::tenants::{Tenant, TenantView};

/// Shortest slug.
pub const MIN_SLUG_LEN: usize = 3;
/// Longest slug.
pub const MAX_SLUG_LEN: usize = 40;
/// Random characters a taken slug gets after a dash.
const SUFFIX_LEN: usize = 4;
/// How many slugs a new tenant tries before its creation gives up as a conflict.
const SLUG_ATTEMPTS: usize = 4;

/// The name of the tenant a registration creates: `tenant_name` as given, else "<name>'s organization" from the
/// display name or, without one, the address's local part.
pub fn default_name(user: &User) -> String {
    if let Some(name) = &user.tenant_name {
        return name.clone();
    }
    let owner = user
        .name
        .clone()
        .unwrap_or_else(|| user.email.split('@').next().unwrap_or_default().to_owned());
    format!("{owner}'s organization")
}

/// Whether `slug` is 3 to 40 of `a-z0-9-`, neither starting nor ending with a dash.
pub fn is_slug(slug: &str) -> bool {
    (MIN_SLUG_LEN..=MAX_SLUG_LEN).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// The slug a name asks for: lower-case ASCII letters and digits, every other run of characters one dash
/// (apostrophes vanish, so "Ada's" is "adas"), cut so a suffix still fits; "org" when too little is left.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if matches!(c, '\'' | '\u{2019}') {
            continue;
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.chars().take(MAX_SLUG_LEN - SUFFIX_LEN - 1).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.len() < MIN_SLUG_LEN {
        "org".to_owned()
    } else {
        slug
    }
}

/// `base` with a dash and four random characters of `a-z0-9`, for when `base` is taken.
pub fn with_suffix(base: &str) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let suffix: String = (0..SUFFIX_LEN)
        .map(|_| char::from(ALPHABET.get(rng.gen_range(0..ALPHABET.len())).copied().unwrap_or(b'x')))
        .collect();
    let base: String = base.chars().take(MAX_SLUG_LEN - SUFFIX_LEN - 1).collect();
    format!("{}-{suffix}", base.trim_end_matches('-'))
}

/// A new tenant for `user`, named by [`default_name`], with `user` (in memory) as its root. Nothing is written:
/// the caller adds the user's write to its transaction and hands the tenant to [`transact_creating`].
pub fn new_for_root(user: &mut User, now: UnixTime) -> Tenant {
    let name = default_name(user);
    let slug = slugify(&name);
    let tenant = Tenant::new(users::new_user_id(), name, slug, now);
    user.join(&tenant.id, Role::Root);
    tenant
}

/// Creates a tenant with no accounts yet, for people an identity provider brings in as they sign in (`make dev`'s
/// demo directory). Its slug comes from its name. One round trip, one more per taken slug.
pub async fn create_unowned(store: &Store, name: &str, now: UnixTime) -> Result<Tenant, Error> {
    let mut tenant = Tenant::new(users::new_user_id(), name.to_owned(), slugify(name), now);
    if transact_creating(store, Vec::new(), Some(&mut tenant)).await? {
        Ok(tenant)
    } else {
        Err(Error::Conflict("The tenant could not be created; try again."))
    }
}

/// Writes `items` in one transaction, with `tenant` created in the same transaction when given. A taken slug
/// (and only that) is retried with a suffixed one, so a sign-in never fails because another tenant has the
/// name; any other failed condition is `Ok(false)` for the caller to judge.
/// One round trip, one more per taken slug.
pub(crate) async fn transact_creating(
    store: &Store,
    items: Vec<TransactWriteItem>,
    tenant: Option<&mut Tenant>,
) -> Result<bool, Error> {
    let Some(tenant) = tenant else {
        return store.transact(items).await;
    };
    let base = tenant.slug.clone();
    let marker_at = items.len() + SLUG_MARKER_INDEX;
    for _ in 0..SLUG_ATTEMPTS {
        let mut all = items.clone();
        all.extend(tenants::create_items(store, tenant)?);
        let failed = store.transact_outcome(all).await?;
        if failed.is_empty() {
            return Ok(true);
        }
        if failed != [marker_at] {
            return Ok(false);
        }
        tenant.slug = with_suffix(&base);
    }
    Err(Error::Conflict("No free slug was found for the new tenant; try again."))
}

/// The caller's tenant. An account in no tenant yet (made before tenancy, not signed in since) has none: 404.
/// One round trip.
pub async fn of(store: &Store, user: &User) -> Result<Tenant, Error> {
    let tenant_id = user.tenant_id.as_deref().ok_or(Error::NotFound)?;
    tenants::get(store, tenant_id).await?.ok_or(Error::NotFound)
}

/// Renames the caller's tenant; the slug (and so every namespace) stays. One round trip.
pub async fn rename(store: &Store, user: &User, name: &str, now: UnixTime) -> Result<Tenant, Error> {
    let tenant_id = user.tenant_id.as_deref().ok_or(Error::NotFound)?;
    tenants::rename(store, tenant_id, name, now)
        .await?
        .ok_or(Error::NotFound)
}

/// Makes `account_id`, a verified, active individual account of the caller's tenant, its root, and the caller
/// (its root) a manager, in one transaction. The caller's session epoch moves (its tokens carry the root role), so
/// its sessions end. Another tenant's account, or none, is 404; the caller itself, a service account or an
/// unverified one is 422. Two round trips: the account, the transaction.
pub async fn transfer_root(state: &crate::State, caller: &User, account_id: &str, now: UnixTime) -> Result<(), Error> {
    let store = &state.store;
    if caller.role != Some(Role::Root) {
        // A refusal by role is `insufficient_scope`, like one by scope (the rule).
        return Err(Error::InsufficientScope("Only the tenant's root can transfer it."));
    }
    if !users::is_id(account_id) {
        return Err(Error::NotFound);
    }
    let target = users::get(store, account_id)
        .await?
        .filter(|target| target.tenant_id.is_some() && target.tenant_id == caller.tenant_id)
        .ok_or(Error::NotFound)?;
    let eligible = target.id != caller.id
        && target.kind == users::AccountKind::Individual
        && target.email_verified
        && target.status == users::AccountStatus::Active;
    if !eligible {
        return Err(Error::InvalidField(
            "account_id must be another verified, active individual account of the tenant.".to_owned(),
        ));
    }
    let changed = |who: &User, from: Option<Role>, to: Role| {
        let event = Event::new(Kind::RoleChanged, who, now, state.config.event_retention)
            .by(&caller.id)
            .with("from", from.map_or("none", Role::as_str))
            .with("to", to.as_str())
            .with("reason", "root_transferred");
        events::put_item(store, &event)
    };
    let items = vec![
        users::set_role_item(store, caller, Role::Manager, now)?,
        users::set_role_item(store, &target, Role::Root, now)?,
        changed(caller, caller.role, Role::Manager)?,
        changed(&target, target.role, Role::Root)?,
    ];
    if store.transact(items).await? {
        Ok(())
    } else {
        Err(Error::Conflict("An account changed during the transfer; try again."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;

    fn user(name: Option<&str>, tenant_name: Option<&str>) -> User {
        User::new(
            users::new_user_id(),
            &Email::parse("ada.lovelace@example.com").unwrap(),
            name.map(str::to_owned),
            tenant_name.map(str::to_owned),
            None,
            0,
        )
    }

    #[test]
    fn names_come_from_tenant_name_then_name_then_the_local_part() {
        assert_eq!(default_name(&user(Some("Ada"), Some("Contoso Ltd"))), "Contoso Ltd");
        assert_eq!(default_name(&user(Some("Ada"), None)), "Ada's organization");
        assert_eq!(default_name(&user(None, None)), "ada.lovelace's organization");
    }

    #[test]
    fn slugs_are_short_lower_case_and_well_formed() {
        assert_eq!(slugify("Contoso Ltd"), "contoso-ltd");
        assert_eq!(slugify("Ada's organization"), "adas-organization");
        assert_eq!(slugify("  --Zoë & Co!!"), "zo-co");
        assert_eq!(slugify("李"), "org");
        assert_eq!(slugify("ab"), "org");
        let long = slugify(&"abc ".repeat(40));
        assert!(is_slug(&long) && long.len() < MAX_SLUG_LEN - SUFFIX_LEN, "{long}");
        for name in ["Contoso Ltd", "李", "x-y-", &"é".repeat(80), &"a".repeat(200)] {
            let slug = slugify(name);
            assert!(is_slug(&slug), "{slug}");
            let suffixed = with_suffix(&slug);
            assert!(is_slug(&suffixed), "{suffixed}");
            assert_ne!(suffixed, with_suffix(&slug));
        }
        assert!(!is_slug("-abc") && !is_slug("ab") && !is_slug("ABC") && !is_slug(&"a".repeat(41)));
    }

    #[test]
    fn a_new_tenants_creator_is_its_root() {
        let mut user = user(None, Some("Contoso"));
        let tenant = new_for_root(&mut user, 7);
        assert_eq!(user.tenant_id.as_deref(), Some(tenant.id.as_str()));
        assert_eq!(user.role, Some(Role::Root));
        assert_eq!((tenant.slug.as_str(), tenant.created_at), ("contoso", 7));
    }
}
