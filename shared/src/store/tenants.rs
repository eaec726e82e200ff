//! Tenants (`TENANT#<id>` / `TENANT`) and the marker that makes a slug unique across the deployment
//! (`SLUG#<slug>` / `TENANT`), written in the same transaction (DESIGN §6).

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, encode, key, n, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::Error;

/// An organization: every account belongs to exactly one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pk: String,
    sk: String,
    /// Stable tenant id (UUID v4 text).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique across the deployment, 3 to 40 of `a-z0-9-`; the first half of every namespace. Never changes.
    pub slug: String,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds.
    pub updated_at: UnixTime,
}

/// A tenant as its accounts see it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct SlugMarker {
    pk: String,
    sk: String,
    tenant_id: String,
}

fn tenant_pk(id: &str) -> String {
    format!("TENANT#{id}")
}

const TENANT_SK: &str = "TENANT";

fn slug_pk(slug: &str) -> String {
    format!("SLUG#{slug}")
}

impl Tenant {
    /// A new tenant.
    pub fn new(id: String, name: String, slug: String, now: UnixTime) -> Self {
        Self {
            pk: tenant_pk(&id),
            sk: TENANT_SK.to_owned(),
            id,
            name,
            slug,
            created_at: now,
            updated_at: now,
        }
    }

    /// The view its accounts get.
    pub fn view(&self) -> TenantView {
        TenantView {
            id: self.id.clone(),
            name: self.name.clone(),
            slug: self.slug.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// The key of a tenant item.
pub(crate) fn tenant_key(id: &str) -> super::Item {
    key(&tenant_pk(id), TENANT_SK)
}

/// Reads a tenant. One round trip.
pub async fn get(store: &Store, id: &str) -> Result<Option<Tenant>, Error> {
    store.get(&tenant_pk(id), TENANT_SK).await
}

/// The position of the slug marker in [`create_items`], so a caller can tell a taken slug from other failures.
pub(crate) const SLUG_MARKER_INDEX: usize = 1;

/// Transaction items that create a tenant and claim its slug; the claim fails if the slug is taken.
pub(crate) fn create_items(store: &Store, tenant: &Tenant) -> Result<[TransactWriteItem; 2], Error> {
    let marker = SlugMarker {
        pk: slug_pk(&tenant.slug),
        sk: TENANT_SK.to_owned(),
        tenant_id: tenant.id.clone(),
    };
    let put = |item| -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(store.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        Ok(TransactWriteItem::builder().put(built(put.build())?).build())
    };
    Ok([put(encode(tenant)?)?, put(encode(&marker)?)?])
}

/// Transaction items that delete a tenant and free its slug (its last account is going).
pub(crate) fn delete_items(store: &Store, tenant: &Tenant) -> Result<[TransactWriteItem; 2], Error> {
    let delete = |pk: String| -> Result<TransactWriteItem, Error> {
        let delete = Delete::builder()
            .table_name(store.table())
            .set_key(Some(key(&pk, TENANT_SK)));
        Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
    };
    Ok([delete(tenant_pk(&tenant.id))?, delete(slug_pk(&tenant.slug))?])
}

/// Renames a tenant (the slug stays) and returns it; `None` when it does not exist. One round trip.
pub async fn rename(store: &Store, id: &str, name: &str, now: UnixTime) -> Result<Option<Tenant>, Error> {
    let output = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(tenant_key(id)))
        .update_expression("SET #name = :name, updated_at = :now")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":name", s(name))
        .expression_attribute_values(":now", n(now))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match output {
        Ok(output) => output.attributes.map(super::decode).transpose(),
        Err(err) if super::is_condition_failure(&err) => Ok(None),
        Err(err) => Err(Error::dependency("dynamodb UpdateItem", err)),
    }
}

/// A transaction item that checks the tenant still exists (used where a write depends on it).
pub(crate) fn exists_check_item(store: &Store, id: &str) -> Result<TransactWriteItem, Error> {
    let check = ConditionCheck::builder()
        .table_name(store.table())
        .set_key(Some(tenant_key(id)))
        .condition_expression("attribute_exists(pk)");
    Ok(TransactWriteItem::builder()
        .condition_check(built(check.build())?)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_round_trip_and_markers_follow_the_slug() {
        let tenant = Tenant::new("t1".into(), "Contoso".into(), "contoso".into(), 10);
        let item = encode(&tenant).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "TENANT#t1");
        let back: Tenant = super::super::decode(item).unwrap();
        assert_eq!(back.view().slug, "contoso");
        assert_eq!(slug_pk("contoso"), "SLUG#contoso");
    }
}
