//! Security and admin events (`EVENTS#<user id>` / `<at>#<id>`): the history of one account, kept for a retention
//! period and indexed by tenant (GSI1 `TENANT#<tenant>#EVENTS`) for the admin feed. An event never holds a
//! secret.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{built, encode, expiry_bucket, Store};
use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::Error;

/// How long an event is kept.
pub const RETENTION_SECONDS: i64 = 90 * 86_400;

/// One recorded event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pk: String,
    sk: String,
    /// Event id.
    pub id: String,
    /// What happened: a snake_case past tense (`password_set_by_admin`, `account_deleted`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    pub at: UnixTime,
    /// Who did it, when not the account itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// The account it happened to.
    pub target_id: String,
    /// The target's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The caller's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The caller's User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// What the event is about beyond its parties (a token's id, say): never a secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    /// Unix seconds; the TTL attribute.
    pub expires_at: UnixTime,
    /// Expiry bucket (DESIGN §6).
    pub expiry_bucket: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
}

/// The partition of an account's events.
pub(crate) fn partition(user_id: &str) -> String {
    format!("EVENTS#{user_id}")
}

impl Event {
    /// An event of `kind` done to `target_id` (of `tenant_id`) by `actor_id`, from `client`.
    pub fn new(
        kind: &str,
        actor_id: Option<&str>,
        target_id: &str,
        tenant_id: Option<&str>,
        client: Option<&ClientInfo>,
        now: UnixTime,
    ) -> Self {
        let id = crate::secret::random_b64(12);
        let sk = format!("{now:012}#{id}");
        Self {
            pk: partition(target_id),
            gsi1pk: tenant_id.map(|tenant| format!("TENANT#{tenant}#EVENTS")),
            gsi1sk: tenant_id.map(|_| sk.clone()),
            sk,
            id,
            kind: kind.to_owned(),
            at: now,
            actor_id: actor_id.map(str::to_owned),
            target_id: target_id.to_owned(),
            tenant_id: tenant_id.map(str::to_owned),
            ip: client.and_then(|c| c.ip.clone()),
            user_agent: client.and_then(|c| c.user_agent.clone()),
            details: BTreeMap::new(),
            expires_at: now + RETENTION_SECONDS,
            expiry_bucket: expiry_bucket(now + RETENTION_SECONDS),
        }
    }

    /// The event with one more detail.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// A transaction item that records `event`, so an action and its record are written together.
pub(crate) fn put_item(store: &Store, event: &Event) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(event)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// Records one event on its own. One round trip.
pub async fn put(store: &Store, event: &Event) -> Result<(), Error> {
    store.put(event).await
}

/// One page of an account's events, newest first, after the event with sort key `after` when given: the events
/// and the sort key of the last one when more may follow. One round trip.
pub async fn page_of(
    store: &Store,
    user_id: &str,
    limit: i32,
    after: Option<&str>,
) -> Result<(Vec<Event>, Option<String>), Error> {
    let start = after.map(|sk| super::key(&partition(user_id), sk));
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", super::s(partition(user_id)))
        .scan_index_forward(false)
        .consistent_read(true)
        .set_exclusive_start_key(start)
        .limit(limit)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb Query", e))?;
    let events = output
        .items
        .unwrap_or_default()
        .into_iter()
        .map(super::decode::<Event>)
        .collect::<Result<Vec<_>, _>>()?;
    let next = output
        .last_evaluated_key
        .filter(|k| !k.is_empty())
        .and(events.last().map(|event| event.sk.clone()));
    Ok((events, next))
}

/// Narrows the tenant feed.
#[derive(Debug, Default, Clone, Copy)]
pub struct FeedFilter<'a> {
    /// Only events that happened to this account.
    pub account_id: Option<&'a str>,
    /// Only events of this type.
    pub kind: Option<&'a str>,
}

/// One page of a tenant's events (GSI1), newest first, after the event `(target, sort key)` when given, narrowed by
/// `filter` (a filter reads `limit` events and keeps the matching ones, so a page may be short; only the last page
/// has no continuation). One round trip.
pub async fn tenant_page(
    store: &Store,
    tenant_id: &str,
    limit: i32,
    after: Option<(&str, &str)>,
    filter: FeedFilter<'_>,
) -> Result<(Vec<Event>, Option<(String, String)>), Error> {
    let gsi1pk = format!("TENANT#{tenant_id}#EVENTS");
    let start = after.map(|(target, sk)| {
        let mut key = super::key(&partition(target), sk);
        key.insert("gsi1pk".to_owned(), super::s(&gsi1pk));
        key.insert("gsi1sk".to_owned(), super::s(sk));
        key
    });
    let mut query = store
        .client()
        .query()
        .table_name(store.table())
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :pk")
        .expression_attribute_values(":pk", super::s(&gsi1pk))
        .scan_index_forward(false)
        .set_exclusive_start_key(start)
        .limit(limit);
    let mut conditions = Vec::new();
    if let Some(account) = filter.account_id {
        conditions.push("target_id = :target");
        query = query.expression_attribute_values(":target", super::s(account));
    }
    if let Some(kind) = filter.kind {
        conditions.push("#type = :type");
        query = query
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", super::s(kind));
    }
    if !conditions.is_empty() {
        query = query.filter_expression(conditions.join(" AND "));
    }
    let output = query
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb Query (gsi1)", e))?;
    let next = output.last_evaluated_key.filter(|k| !k.is_empty()).and_then(|key| {
        let text = |name: &str| key.get(name).and_then(|v| v.as_s().ok()).cloned();
        Some((text("pk")?.strip_prefix("EVENTS#")?.to_owned(), text("sk")?))
    });
    let events = output
        .items
        .unwrap_or_default()
        .into_iter()
        .map(super::decode::<Event>)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((events, next))
}
