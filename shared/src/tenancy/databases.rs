//! Databases: validating names, choosing one at sign-in (by id or by namespace), and creating, listing, reading
//! and deleting a tenant's databases. Another tenant's database is always 404, exactly as a missing one.

use crate::clock::UnixTime;
use crate::store::databases;
use crate::store::tenants;
use crate::store::users::{self, User};
use crate::store::Store;
use crate::tenancy::tenants::is_slug;
use crate::Error;

pub use crate::store::databases::{Database, DatabaseView};

/// Longest database name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Checks a database name: 1 to 64 of `a-z0-9_-` (422 `invalid_field` otherwise).
pub fn check_name(raw: &str) -> Result<String, Error> {
    if is_name(raw) {
        Ok(raw.to_owned())
    } else {
        Err(Error::InvalidField(format!(
            "name must be 1 to {MAX_NAME_LEN} of a-z, 0-9, _ and -."
        )))
    }
}

fn is_name(raw: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks an optional description: at most 500 printable characters; blank is none.
pub fn check_description(raw: Option<&str>) -> Result<Option<String>, Error> {
    crate::account::clean_text(raw, "description", MAX_DESCRIPTION_CHARS)
}

/// Which database a sign-in (or a switch) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// By id.
    Id(String),
    /// By `<tenant slug>/<database name>`.
    Namespace(String),
}

impl Selector {
    /// Reads the optional `database_id` and `namespace` fields: at most one of them (422 `invalid_field` for
    /// both), and a namespace of the right shape (422). A malformed id is not refused here: it is simply not
    /// found (404), like any other id.
    pub fn from_fields(database_id: Option<String>, namespace: Option<String>) -> Result<Option<Self>, Error> {
        match (database_id, namespace) {
            (Some(_), Some(_)) => Err(Error::InvalidField(
                "Give database_id or namespace, not both.".to_owned(),
            )),
            (Some(id), None) => Ok(Some(Self::Id(id))),
            (None, Some(namespace)) => {
                let well_formed = namespace
                    .split_once('/')
                    .is_some_and(|(slug, name)| is_slug(slug) && is_name(name));
                if well_formed {
                    Ok(Some(Self::Namespace(namespace)))
                } else {
                    Err(Error::InvalidField(
                        "namespace must be <tenant slug>/<database name>.".to_owned(),
                    ))
                }
            }
            (None, None) => Ok(None),
        }
    }

    /// Reads the database it names, whatever its tenant; [`in_tenant`] decides. One round trip (none for an id
    /// that cannot be one).
    pub async fn lookup(&self, store: &Store) -> Result<Option<Database>, Error> {
        match self {
            Self::Id(id) if users::is_id(id) => databases::get(store, id).await,
            Self::Id(_) => Ok(None),
            Self::Namespace(namespace) => databases::get_by_namespace(store, namespace).await,
        }
    }
}

/// The database, when it belongs to `tenant_id`; 404 otherwise (missing and foreign look alike).
pub fn in_tenant(database: Option<Database>, tenant_id: Option<&str>) -> Result<Database, Error> {
    match (database, tenant_id) {
        (Some(database), Some(tenant)) if database.tenant_id == tenant => Ok(database),
        _ => Err(Error::NotFound),
    }
}

/// Creates a database in the caller's tenant. A name already used in the tenant is 409 `conflict`.
/// Two round trips: the tenant (for its slug), one transaction (the database and its namespace marker).
pub async fn create(
    store: &Store,
    caller: &User,
    name: String,
    description: Option<String>,
    now: UnixTime,
) -> Result<Database, Error> {
    let tenant = crate::tenancy::tenants::of(store, caller).await?;
    let database = Database::new(users::new_user_id(), &tenant.id, &tenant.slug, name, description, now);
    let mut items = Vec::from(databases::create_items(store, &database)?);
    // The tenant cannot vanish today, but a database must never outlive it.
    items.push(tenants::exists_check_item(store, &tenant.id)?);
    if store.transact(items).await? {
        Ok(database)
    } else {
        Err(Error::Conflict("The tenant already has a database with this name."))
    }
}

/// The caller's tenant's databases, newest first. One round trip (a GSI query: listing only).
pub async fn list(store: &Store, caller: &User) -> Result<Vec<Database>, Error> {
    let tenant_id = caller.tenant_id.as_deref().ok_or(Error::NotFound)?;
    databases::list(store, tenant_id).await
}

/// One database of the caller's tenant; 404 for another tenant's. One round trip.
pub async fn get(store: &Store, caller: &User, id: &str) -> Result<Database, Error> {
    in_tenant(
        Selector::Id(id.to_owned()).lookup(store).await?,
        caller.tenant_id.as_deref(),
    )
}

/// Deletes one database of the caller's tenant; sessions scoped to it fail at their next refresh. 404 for
/// another tenant's or a missing one. Two round trips: the read (for its namespace), the transaction.
pub async fn delete(store: &Store, caller: &User, id: &str) -> Result<(), Error> {
    let database = get(store, caller, id).await?;
    if store
        .transact(Vec::from(databases::delete_items(store, &database)?))
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// How long the authorizer trusts a namespace it has read.
pub const NAMESPACE_CACHE_SECONDS: i64 = 30;
/// Most namespaces kept; past it the cache starts over, so no stream of names can grow it.
const NAMESPACE_CACHE_ENTRIES: usize = 1_024;

/// The databases behind namespaces the authorizer read lately (found ones only), so a busy route costs one read
/// per namespace every half minute. A deleted database may still pass for that long; its sessions' refreshes do
/// not (they read it every time).
#[derive(Debug, Default)]
pub struct NamespaceCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Database, UnixTime)>>,
}

impl NamespaceCache {
    /// The database of `namespace` (a well-formed one: see [`Selector::from_fields`]), from the cache or one
    /// strongly consistent read.
    pub async fn lookup(&self, store: &Store, namespace: &str, now: UnixTime) -> Result<Option<Database>, Error> {
        let cached = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(namespace).cloned());
        if let Some((database, read_at)) = cached {
            if now - read_at < NAMESPACE_CACHE_SECONDS {
                return Ok(Some(database));
            }
        }
        let found = databases::get_by_namespace(store, namespace).await?;
        if let (Some(database), Ok(mut entries)) = (&found, self.entries.lock()) {
            if entries.len() >= NAMESPACE_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(namespace.to_owned(), (database.clone(), now));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        assert!(check_name("default").is_ok());
        assert!(check_name("a_b-9").is_ok());
        assert!(check_name(&"a".repeat(64)).is_ok());
        for bad in ["", "Default", "a/b", "a b", "é", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_take_one_field_of_the_right_shape() {
        assert_eq!(Selector::from_fields(None, None).unwrap(), None);
        assert_eq!(
            Selector::from_fields(Some("x".into()), None).unwrap(),
            Some(Selector::Id("x".into()))
        );
        assert_eq!(
            Selector::from_fields(None, Some("contoso/default".into())).unwrap(),
            Some(Selector::Namespace("contoso/default".into()))
        );
        assert!(Selector::from_fields(Some("x".into()), Some("contoso/default".into())).is_err());
        for bad in [
            "contoso",
            "contoso/",
            "/default",
            "Contoso/default",
            "contoso/a/b",
            "co/default",
        ] {
            assert!(Selector::from_fields(None, Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn another_tenants_database_is_not_found() {
        let db = Database::new(users::new_user_id(), "t1", "contoso", "default".into(), None, 0);
        assert!(in_tenant(Some(db.clone()), Some("t1")).is_ok());
        assert!(matches!(in_tenant(Some(db.clone()), Some("t2")), Err(Error::NotFound)));
        assert!(matches!(in_tenant(Some(db), None), Err(Error::NotFound)));
        assert!(matches!(in_tenant(None, Some("t1")), Err(Error::NotFound)));
    }
}
