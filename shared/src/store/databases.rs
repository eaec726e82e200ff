//! Databases (`DATABASE#<id>` / `DATABASE`, listed per tenant through GSI1) and the namespace marker
//! (`NAMESPACE#<slug>/<name>` / `DATABASE`), a full copy of the record written in the same transaction. The marker
//! makes a name unique within its tenant (the slug is unique, so the namespace is unique across the deployment)
//! and answers a lookup by namespace in one strongly consistent read; the main item answers one by id. No
//! decision reads the GSI.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{built, encode, key, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::Error;

/// A database of a tenant, which tokens can be scoped to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    pk: String,
    sk: String,
    /// Stable database id (UUID v4 text).
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// Unique within the tenant, 1 to 64 of `a-z0-9_-`.
    pub name: String,
    /// `<tenant slug>/<name>`.
    pub namespace: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// GSI1 partition (the tenant's databases); absent on the marker, so listings see each database once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
}

/// A database as the tenant's accounts see it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseView {
    /// Database id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `<tenant slug>/<name>`.
    pub namespace: String,
    /// Free text.
    pub description: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

fn database_pk(id: &str) -> String {
    format!("DATABASE#{id}")
}

fn namespace_pk(namespace: &str) -> String {
    format!("NAMESPACE#{namespace}")
}

const DATABASE_SK: &str = "DATABASE";

fn tenant_partition(tenant_id: &str) -> String {
    format!("TENANT#{tenant_id}#DATABASES")
}

impl Database {
    /// A new database `name` of the tenant whose slug is `slug`.
    pub fn new(
        id: String,
        tenant_id: &str,
        slug: &str,
        name: String,
        description: Option<String>,
        now: UnixTime,
    ) -> Self {
        Self {
            pk: database_pk(&id),
            sk: DATABASE_SK.to_owned(),
            namespace: format!("{slug}/{name}"),
            tenant_id: tenant_id.to_owned(),
            name,
            description,
            created_at: now,
            gsi1pk: Some(tenant_partition(tenant_id)),
            gsi1sk: Some(format!("{now:012}#{id}")),
            id,
        }
    }

    /// The view the tenant's accounts get.
    pub fn view(&self) -> DatabaseView {
        DatabaseView {
            id: self.id.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            description: self.description.clone(),
            created_at: rfc3339(self.created_at),
        }
    }

    fn marker(&self) -> Self {
        Self {
            pk: namespace_pk(&self.namespace),
            gsi1pk: None,
            gsi1sk: None,
            ..self.clone()
        }
    }
}

/// The key of a database item, for batch reads beside other items.
pub(crate) fn database_key(id: &str) -> super::Item {
    key(&database_pk(id), DATABASE_SK)
}

/// Reads a database by id, whatever its tenant: callers compare `tenant_id`. One round trip.
pub async fn get(store: &Store, id: &str) -> Result<Option<Database>, Error> {
    store.get(&database_pk(id), DATABASE_SK).await
}

/// Reads a database by namespace, whatever its tenant (the namespace marker). One round trip.
pub async fn get_by_namespace(store: &Store, namespace: &str) -> Result<Option<Database>, Error> {
    let marker: Option<Database> = store.get(&namespace_pk(namespace), DATABASE_SK).await?;
    Ok(marker.map(|m| Database {
        pk: database_pk(&m.id),
        ..m
    }))
}

/// The tenant's databases, newest first (GSI1: eventually consistent, for listing only). One round trip per page.
pub async fn list(store: &Store, tenant_id: &str) -> Result<Vec<Database>, Error> {
    store
        .query_gsi1(
            tenant_partition(tenant_id),
            "tenant_id = :tenant",
            vec![(":tenant", s(tenant_id))],
            &[],
        )
        .await
}

/// Transaction items that create a database and claim its namespace; the claim fails if the name is taken in the
/// tenant.
pub(crate) fn create_items(store: &Store, database: &Database) -> Result<[TransactWriteItem; 2], Error> {
    let put = |item| -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(store.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        Ok(TransactWriteItem::builder().put(built(put.build())?).build())
    };
    Ok([put(encode(database)?)?, put(encode(&database.marker())?)?])
}

/// Transaction items that delete a database and free its namespace, only if it still belongs to `tenant_id`.
pub(crate) fn delete_items(store: &Store, database: &Database) -> Result<[TransactWriteItem; 2], Error> {
    let delete = |pk: String| -> Result<TransactWriteItem, Error> {
        let delete = Delete::builder()
            .table_name(store.table())
            .set_key(Some(key(&pk, DATABASE_SK)))
            .condition_expression("attribute_exists(pk) AND tenant_id = :tenant")
            .expression_attribute_values(":tenant", s(&database.tenant_id));
        Ok(TransactWriteItem::builder().delete(built(delete.build())?).build())
    };
    Ok([
        delete(database_pk(&database.id))?,
        delete(namespace_pk(&database.namespace))?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_the_record_under_its_namespace() {
        let db = Database::new("d1".into(), "t1", "contoso", "default".into(), None, 5);
        assert_eq!(db.namespace, "contoso/default");
        let item = encode(&db).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "DATABASE#d1");
        assert_eq!(item["gsi1pk"].as_s().unwrap(), "TENANT#t1#DATABASES");
        let marker = encode(&db.marker()).unwrap();
        assert_eq!(marker["pk"].as_s().unwrap(), "NAMESPACE#contoso/default");
        assert!(!marker.contains_key("gsi1pk"));
        let back: Database = super::super::decode(marker).unwrap();
        assert_eq!((back.id.as_str(), back.tenant_id.as_str()), ("d1", "t1"));
    }
}
