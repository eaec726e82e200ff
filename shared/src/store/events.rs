//! Security and admin events (`EVENTS#<user id>` / `<at>#<id>`): the history of one account, kept for a retention
//! period and indexed by tenant (GSI1 `TENANT#<tenant>#EVENTS`) for the admin feed. An event never holds a
//! secret.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{built, encode, expiry_bucket, Store};
use crate::clock::UnixTime;
use crate::store::users::User;
use crate::Error;

/// What happened: the event types, snake_case past tenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A sign-in succeeded (`details.method`).
    SignedIn,
    /// A sign-in of an existing account failed (`details.method`).
    SignInFailed,
    /// A first factor was right and a second one was asked for (`details.method`): a sign-in half done.
    SecondFactorRequested,
    /// A rotated-out refresh token was presented again; its session was revoked.
    RefreshReuseDetected,
    /// A session was ended (`details.reason`: logout, revoked, other_sessions_revoked).
    SessionRevoked,
    /// The owner changed the password.
    PasswordChanged,
    /// The password was reset through an emailed code.
    PasswordReset,
    /// An admin set the password.
    PasswordSetByAdmin,
    /// TOTP was turned on.
    MfaEnabled,
    /// TOTP was turned off.
    MfaDisabled,
    /// A backup code was spent.
    BackupCodeUsed,
    /// New backup codes replaced the old ones.
    BackupCodesRegenerated,
    /// An admin removed every second factor.
    SecondFactorsReset,
    /// A passkey was registered.
    PasskeyAdded,
    /// A passkey was deleted.
    PasskeyRemoved,
    /// A personal access token was created.
    ApiTokenCreated,
    /// A personal access token was rotated.
    ApiTokenRotated,
    /// A personal access token was deleted.
    ApiTokenDeleted,
    /// The account's role changed (`details.from`, `details.to`).
    RoleChanged,
    /// The account was disabled.
    AccountDisabled,
    /// The account was enabled again.
    AccountEnabled,
    /// The account was deleted.
    AccountDeleted,
    /// An admin invited the account.
    AccountInvited,
    /// An admin created the service account.
    ServiceAccountCreated,
    /// A scoped token was created.
    ScopedTokenCreated,
    /// A scoped token was revoked.
    ScopedTokenRevoked,
}

impl Kind {
    /// Every kind, for validating a filter.
    pub const ALL: [Kind; 26] = [
        Kind::SignedIn,
        Kind::SignInFailed,
        Kind::SecondFactorRequested,
        Kind::RefreshReuseDetected,
        Kind::SessionRevoked,
        Kind::PasswordChanged,
        Kind::PasswordReset,
        Kind::PasswordSetByAdmin,
        Kind::MfaEnabled,
        Kind::MfaDisabled,
        Kind::BackupCodeUsed,
        Kind::BackupCodesRegenerated,
        Kind::SecondFactorsReset,
        Kind::PasskeyAdded,
        Kind::PasskeyRemoved,
        Kind::ApiTokenCreated,
        Kind::ApiTokenRotated,
        Kind::ApiTokenDeleted,
        Kind::RoleChanged,
        Kind::AccountDisabled,
        Kind::AccountEnabled,
        Kind::AccountDeleted,
        Kind::AccountInvited,
        Kind::ServiceAccountCreated,
        Kind::ScopedTokenCreated,
        Kind::ScopedTokenRevoked,
    ];

    /// The type as the API and the table spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SignedIn => "signed_in",
            Kind::SignInFailed => "sign_in_failed",
            Kind::SecondFactorRequested => "second_factor_requested",
            Kind::RefreshReuseDetected => "refresh_reuse_detected",
            Kind::SessionRevoked => "session_revoked",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordReset => "password_reset",
            Kind::PasswordSetByAdmin => "password_set_by_admin",
            Kind::MfaEnabled => "mfa_enabled",
            Kind::MfaDisabled => "mfa_disabled",
            Kind::BackupCodeUsed => "backup_code_used",
            Kind::BackupCodesRegenerated => "backup_codes_regenerated",
            Kind::SecondFactorsReset => "second_factors_reset",
            Kind::PasskeyAdded => "passkey_added",
            Kind::PasskeyRemoved => "passkey_removed",
            Kind::ApiTokenCreated => "api_token_created",
            Kind::ApiTokenRotated => "api_token_rotated",
            Kind::ApiTokenDeleted => "api_token_deleted",
            Kind::RoleChanged => "role_changed",
            Kind::AccountDisabled => "account_disabled",
            Kind::AccountEnabled => "account_enabled",
            Kind::AccountDeleted => "account_deleted",
            Kind::AccountInvited => "account_invited",
            Kind::ServiceAccountCreated => "service_account_created",
            Kind::ScopedTokenCreated => "scoped_token_created",
            Kind::ScopedTokenRevoked => "scoped_token_revoked",
        }
    }

    /// The kind spelled `name`, if any.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One recorded event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pk: String,
    sk: String,
    /// Event id.
    pub id: String,
    /// What happened: a [`Kind`] as spelled in the table.
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
    /// The session the request came from, or the one the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
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
    /// An event of `kind` that happened to `target` at `now`, kept `retention` seconds, from the client of the
    /// request being served ([`crate::http::current_client`]).
    pub fn new(kind: Kind, target: &User, now: UnixTime, retention: i64) -> Self {
        Self::about(kind, &target.id, target.tenant_id.as_deref(), now, retention)
    }

    /// [`Event::new`] for an account known only by its id and tenant.
    pub fn about(kind: Kind, target_id: &str, tenant_id: Option<&str>, now: UnixTime, retention: i64) -> Self {
        let id = crate::secret::random_b64(12);
        let sk = format!("{now:012}#{id}");
        let client = crate::http::current_client();
        Self {
            pk: partition(target_id),
            gsi1pk: tenant_id.map(|tenant| format!("TENANT#{tenant}#EVENTS")),
            gsi1sk: tenant_id.map(|_| sk.clone()),
            sk,
            id,
            kind: kind.as_str().to_owned(),
            at: now,
            actor_id: None,
            target_id: target_id.to_owned(),
            tenant_id: tenant_id.map(str::to_owned),
            session_id: None,
            ip: client.ip,
            user_agent: client.user_agent,
            details: BTreeMap::new(),
            expires_at: now + retention,
            expiry_bucket: expiry_bucket(now + retention),
        }
    }

    /// The event as done by `actor_id` (an admin, or whoever acted on the account).
    pub fn by(mut self, actor_id: &str) -> Self {
        self.actor_id = Some(actor_id.to_owned());
        self
    }

    /// The event as coming from, or being about, session `session_id`.
    pub fn in_session(mut self, session_id: &str) -> Self {
        self.session_id = Some(session_id.to_owned());
        self
    }

    /// The event without the client's address and User-Agent: for what outlives the account it is about.
    pub fn anonymous(mut self) -> Self {
        self.ip = None;
        self.user_agent = None;
        self
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

/// The write [`put`] makes, for no account: a put of an event at an unused key, refused by its condition, so that a
/// request about an unknown address makes the same call as one about a known address and writes nothing. One round
/// trip.
pub async fn put_decoy(store: &Store, now: UnixTime) -> Result<(), Error> {
    let decoy = Event::about(Kind::SignInFailed, &crate::store::users::new_user_id(), None, now, 0);
    let result = store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(encode(&decoy)?))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    super::conditional(result, "dynamodb PutItem").map(|_| ())
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
