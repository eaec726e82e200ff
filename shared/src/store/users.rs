//! Users (`USER#<id>` / `PROFILE`) and the email marker that makes an address unique (`EMAIL#<email>` / `USER`).

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, encode, key, n, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::email::Email;
use crate::tenancy::Role;
use crate::Error;

/// A user account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pk: String,
    sk: String,
    /// Stable user id (UUID v4 text).
    pub id: String,
    /// Normalised email address.
    pub email: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tenant named at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// argon2id PHC string; `None` when the account has no usable password (DESIGN §7: a pending account whose
    /// mailbox was first proven by a code or a link, or whose registration was contested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Whether the address was proven by a code.
    pub email_verified: bool,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds.
    pub updated_at: UnixTime,
    /// Sessions started under an older epoch are revoked: bumping it ends every session in one write.
    pub session_epoch: i64,
    /// Personal access tokens created under an older epoch are revoked: bumping it ends every one in one write.
    #[serde(default)]
    pub token_epoch: i64,
    /// The tenant the account belongs to; `None` only for an account made before tenancy, until its next sign-in
    /// gives it a tenant of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Its role in the tenant; `None` exactly when `tenant_id` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Individual (an email) or service (a `service_name` within the tenant).
    #[serde(default)]
    pub kind: AccountKind,
    /// A service account's name, unique within its tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Invited, active or disabled; a disabled account's credentials all fail.
    #[serde(default)]
    pub status: AccountStatus,
    /// When two-factor authentication was turned on; `None` while it is off. Every first-factor sign-in of an
    /// account with it on answers with a challenge instead of tokens (see [`crate::mfa`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_enabled_at: Option<UnixTime>,
    /// How many passkeys the account has (kept in the transactions that add and remove them).
    #[serde(default)]
    pub passkey_count: i64,
    /// The identity-provider entry (Entra ID or LDAP) that provisioned the account: its password lives there, so
    /// keygate never sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// GSI1 partition: the tenant's accounts, for listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    /// GSI1 sort: creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
}

/// The two kinds of account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A person, identified by a verified email.
    #[default]
    Individual,
    /// A machine, identified by its `service_name` within the tenant; no email.
    Service,
}

impl AccountKind {
    /// The wire name (the `acct` claim).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Service => "service",
        }
    }
}

/// Where an account stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Invited, the invitation not yet accepted.
    Invited,
    /// In use.
    #[default]
    Active,
    /// Disabled by a manager: every credential fails.
    Disabled,
}

/// The public view of a user, as `/v1/auth/me` and token responses show it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Email address (absent for a service account).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// A service account's name within its tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Whether the address is verified.
    pub email_verified: bool,
    /// Whether the account has a usable password; without one it signs in with emailed codes or links, and can
    /// set a password from a fresh session.
    pub has_password: bool,
    /// RFC 3339.
    pub created_at: String,
    /// The account's tenant (absent only before the first sign-in since tenancy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The account's role in the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// `individual` or `service`.
    pub kind: AccountKind,
    /// Whether sign-ins need a second factor.
    pub mfa_enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct EmailMarker {
    pk: String,
    sk: String,
    user_id: String,
    /// A copy of the owner's user item, written by a sign-in that read it, so that the next password sign-in
    /// reads one item instead of two. Never trusted on its own: see [`Marker::copy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<User>,
}

/// What an address's marker says: its owner, and the copy of the owner it carries when one is usable.
#[derive(Debug)]
pub struct Marker {
    /// The owner's id.
    pub user_id: String,
    /// The copy of the owner written at an earlier sign-in, when it is the owner's and describes an account that
    /// can sign in with a password ([`copyable`]). It may be stale: whatever it lets happen must be written with
    /// [`unchanged_check_item`].
    pub copy: Option<User>,
}

/// Whether a copy of `user` may stand in for it at a password sign-in: an active, verified individual account in
/// a tenant, with a password of its own. Anything else (pending, invited, disabled, directory accounts, accounts
/// made before tenancy) always reads the user item.
pub(crate) fn copyable(user: &User) -> bool {
    user.kind == AccountKind::Individual
        && user.status == AccountStatus::Active
        && user.email_verified
        && user.password_hash.is_some()
        && user.tenant_id.is_some()
        && user.role.is_some()
        && user.idp.is_none()
}

/// The GSI1 partition listing a tenant's accounts.
pub(crate) fn accounts_partition(tenant_id: &str) -> String {
    format!("TENANT#{tenant_id}#ACCOUNTS")
}

fn user_pk(id: &str) -> String {
    format!("USER#{id}")
}

const USER_SK: &str = "PROFILE";

/// The partition of everything keyed by an email address (the marker and the emailed codes).
pub(crate) fn email_pk(email: &Email) -> String {
    format!("EMAIL#{email}")
}

const MARKER_SK: &str = "USER";
/// The condition of every write to a marker's copy: the marker still names the account (`:id`).
const MARKER_NAMES_ACCOUNT: &str = "user_id = :id";
/// Drops the copy from a marker.
const DROP_COPY: &str = "REMOVE profile";

impl User {
    /// A new, unverified user with the id `id` (see [`new_user_id`]).
    pub fn new(
        id: String,
        email: &Email,
        name: Option<String>,
        tenant_name: Option<String>,
        password_hash: Option<String>,
        now: UnixTime,
    ) -> Self {
        Self {
            pk: user_pk(&id),
            sk: USER_SK.to_owned(),
            id,
            email: email.as_str().to_owned(),
            name,
            tenant_name,
            password_hash,
            email_verified: false,
            created_at: now,
            updated_at: now,
            session_epoch: 0,
            token_epoch: 0,
            tenant_id: None,
            role: None,
            kind: AccountKind::Individual,
            service_name: None,
            status: AccountStatus::Active,
            mfa_enabled_at: None,
            passkey_count: 0,
            idp: None,
            gsi1pk: None,
            gsi1sk: None,
        }
    }

    /// A new service account of `tenant_id`: no email (an empty `email`, and no email marker), active at once.
    pub fn new_service(
        id: String,
        tenant_id: &str,
        service_name: String,
        role: Role,
        password_hash: String,
        now: UnixTime,
    ) -> Self {
        let mut user = Self {
            pk: user_pk(&id),
            sk: USER_SK.to_owned(),
            id,
            email: String::new(),
            name: None,
            tenant_name: None,
            password_hash: Some(password_hash),
            email_verified: false,
            created_at: now,
            updated_at: now,
            session_epoch: 0,
            token_epoch: 0,
            tenant_id: None,
            role: None,
            kind: AccountKind::Service,
            service_name: Some(service_name),
            status: AccountStatus::Active,
            mfa_enabled_at: None,
            passkey_count: 0,
            idp: None,
            gsi1pk: None,
            gsi1sk: None,
        };
        user.join(tenant_id, role);
        user
    }

    /// The key of the account's password backoff: its address, or for a service account its name within its
    /// tenant (see [`service_backoff_key`]).
    pub fn backoff_key(&self) -> String {
        match (&self.tenant_id, &self.service_name) {
            (Some(tenant_id), Some(service_name)) if self.kind == AccountKind::Service => {
                service_backoff_key(tenant_id, service_name)
            }
            _ => self.email.clone(),
        }
    }

    /// Puts the account in `tenant_id` with `role` (in memory; [`join_tenant_item`] or [`verify_item`] writes it).
    pub fn join(&mut self, tenant_id: &str, role: Role) {
        self.tenant_id = Some(tenant_id.to_owned());
        self.role = Some(role);
        self.gsi1pk = Some(accounts_partition(tenant_id));
        self.gsi1sk = Some(format!("{:012}#{}", self.created_at, self.id));
    }

    /// The public view.
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            email: self.email.clone(),
            service_name: self.service_name.clone(),
            name: self.name.clone(),
            email_verified: self.email_verified,
            has_password: self.password_hash.is_some(),
            created_at: rfc3339(self.created_at),
            tenant_id: self.tenant_id.clone(),
            role: self.role,
            kind: self.kind,
            mfa_enabled: self.mfa_enabled_at.is_some(),
        }
    }
}

pub use crate::tokens::is_id;

/// A new random user id (UUID v4 text).
pub fn new_user_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // RFC 9562 version 4, variant 10.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The key of a user item.
pub(crate) fn user_key(id: &str) -> super::Item {
    key(&user_pk(id), USER_SK)
}

/// Reads a user by id.
pub async fn get(store: &Store, id: &str) -> Result<Option<User>, Error> {
    store.get(&user_pk(id), USER_SK).await
}

/// The id of the account that owns an address, if any.
pub async fn id_for_email(store: &Store, email: &Email) -> Result<Option<String>, Error> {
    Ok(store
        .get::<EmailMarker>(&email_pk(email), MARKER_SK)
        .await?
        .map(|m| m.user_id))
}

/// Reads the marker of an address, with the copy of its owner when that copy is usable (see [`Marker`]).
pub async fn marker_for_email(store: &Store, email: &Email) -> Result<Option<Marker>, Error> {
    let Some(marker) = store.get::<EmailMarker>(&email_pk(email), MARKER_SK).await? else {
        return Ok(None);
    };
    let copy = marker
        .profile
        .filter(|copy| copy.id == marker.user_id && copy.email == email.as_str() && copyable(copy));
    Ok(Some(Marker {
        user_id: marker.user_id,
        copy,
    }))
}

/// A transaction item that stores `user`, just read, as the copy on its address's marker, only while the marker
/// is still the user's (an Update on a missing marker would create one).
pub(crate) fn copy_to_marker_item(store: &Store, user: &User) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(key(&marker_pk_of(user)?, MARKER_SK)))
        .update_expression("SET profile = :profile")
        .condition_expression(MARKER_NAMES_ACCOUNT)
        .expression_attribute_values(":profile", AttributeValue::M(encode(user)?))
        .expression_attribute_values(":id", s(&user.id));
    transact_update(update)
}

/// Drops the copy of `user` from its address's marker, after a write that changed its password: a stale copy
/// is never trusted (see [`unchanged_check_item`]), but a failed sign-in against an outdated hash would have to
/// run argon2 twice, which an observer could time. Best effort, one round trip.
pub async fn forget_copy(store: &Store, user: &User) {
    let Ok(pk) = marker_pk_of(user) else {
        return;
    };
    let removed = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&pk, MARKER_SK)))
        .update_expression(DROP_COPY)
        .condition_expression(MARKER_NAMES_ACCOUNT)
        .expression_attribute_values(":id", s(&user.id))
        .send()
        .await;
    if let Err(err) = removed {
        if !super::is_condition_failure(&err) {
            tracing::warn!(error = ?err, "dropping a sign-in copy failed; the next sign-in reads the account");
        }
    }
}

/// Writes `items`, a change of `user`'s password, with the copy on its address's marker removed in the same
/// transaction, so that no copy of the old hash outlives the change (a sign-in checks a copy before trusting it,
/// but a wrong password against an outdated hash would make calls a stranger could tell apart). Only an individual
/// account has an address marker. Should the marker not be the account's (never expected), the change is written
/// without it rather than refused.
pub(crate) async fn transact_dropping_copy(
    store: &Store,
    mut items: Vec<TransactWriteItem>,
    user: &User,
) -> Result<bool, Error> {
    let pk = match marker_pk_of(user) {
        Ok(pk) if user.kind == AccountKind::Individual => pk,
        _ => return store.transact(items).await,
    };
    let at = items.len();
    let drop = Update::builder()
        .table_name(store.table())
        .set_key(Some(key(&pk, MARKER_SK)))
        .update_expression(DROP_COPY)
        .condition_expression(MARKER_NAMES_ACCOUNT)
        .expression_attribute_values(":id", s(&user.id));
    items.push(transact_update(drop)?);
    let failed = store.transact_outcome(items.clone()).await?;
    if failed.is_empty() {
        return Ok(true);
    }
    if failed != [at] {
        return Ok(false);
    }
    tracing::error!(user = %user.id, "an account's address marker is not its own; its login copy was not dropped");
    items.truncate(at);
    store.transact(items).await
}

fn marker_pk_of(user: &User) -> Result<String, Error> {
    Ok(email_pk(&Email::parse(&user.email)?))
}

/// Attributes the user item may lack: serde leaves out a `None`, and `deleting_at` marks an account being
/// deleted. A copy without one of them holds only while the item lacks it too.
const ABSENT_WHEN_NONE: [&str; 11] = [
    "name",
    "tenant_name",
    "password_hash",
    "tenant_id",
    "role",
    "service_name",
    "mfa_enabled_at",
    "idp",
    "gsi1pk",
    "gsi1sk",
    "deleting_at",
];

/// Items written before a field existed lack it, and decode to its default.
fn is_serde_default(name: &str, value: &AttributeValue) -> bool {
    match name {
        "token_epoch" | "passkey_count" => value.as_n().is_ok_and(|n| n == "0"),
        "kind" => value.as_s().is_ok_and(|s| s == "individual"),
        "status" => value.as_s().is_ok_and(|s| s == "active"),
        _ => false,
    }
}

/// A transaction item that holds only while the user item is exactly `copy`: every attribute the copy has is
/// equal, every one it lacks is absent, and the account is not being deleted. A sign-in decided on a copy that
/// any writer has since changed (a new password, a disable, 2FA turned on, a new role, a revocation) fails
/// instead of signing in. Comparing every field, not a list of the ones a sign-in reads, means a field added
/// later is covered without anyone remembering to.
pub(crate) fn unchanged_check_item(store: &Store, copy: &User) -> Result<TransactWriteItem, Error> {
    let encoded = encode(copy)?;
    let mut check = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&copy.id)));
    let mut clauses = vec!["attribute_exists(pk)".to_owned()];
    let mut fields: Vec<_> = encoded.into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (field, value)) in fields.iter().enumerate() {
        let (name, placeholder) = (format!("#u{i}"), format!(":u{i}"));
        clauses.push(if is_serde_default(field, value) {
            format!("(attribute_not_exists({name}) OR {name} = {placeholder})")
        } else {
            format!("{name} = {placeholder}")
        });
        check = check
            .expression_attribute_names(name, field.clone())
            .expression_attribute_values(placeholder, value.clone());
    }
    for (i, field) in ABSENT_WHEN_NONE
        .iter()
        .filter(|field| !fields.iter().any(|(f, _)| f == *field))
        .enumerate()
    {
        let name = format!("#a{i}");
        clauses.push(format!("attribute_not_exists({name})"));
        check = check.expression_attribute_names(name, *field);
    }
    let check = check.condition_expression(clauses.join(" AND "));
    Ok(TransactWriteItem::builder()
        .condition_check(built(check.build())?)
        .build())
}

/// Reads the account that owns an address: the marker, then the user (two round trips).
pub async fn find_by_email(store: &Store, email: &Email) -> Result<Option<User>, Error> {
    match id_for_email(store, email).await? {
        Some(id) => get(store, &id).await,
        None => Ok(None),
    }
}

/// A transaction item that turns the user's second-factor flag on, only if it is off (so that two enrolments
/// racing cannot both win), and moves the account to the session epoch `new_epoch`, only if it is still at the one
/// `user` was read with: turning a factor on ends the sessions that signed in without it.
pub(crate) fn enable_second_factor_item(
    store: &Store,
    user: &User,
    new_epoch: i64,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression("SET mfa_enabled_at = :now, session_epoch = :new_epoch, updated_at = :now")
        .condition_expression(
            "attribute_exists(pk) AND attribute_not_exists(mfa_enabled_at) AND session_epoch = :old_epoch",
        )
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":new_epoch", n(new_epoch))
        .expression_attribute_values(":old_epoch", n(user.session_epoch));
    transact_update(update)
}

/// A transaction item that counts one more passkey, only while the account exists and has fewer than `max`.
pub(crate) fn passkey_added_item(store: &Store, user_id: &str, max: i64) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(user_id)))
        .update_expression("ADD passkey_count :one")
        .condition_expression("attribute_exists(pk) AND (attribute_not_exists(passkey_count) OR passkey_count < :max)")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":max", n(max));
    transact_update(update)
}

/// A transaction item that counts one passkey fewer.
pub(crate) fn passkey_removed_item(store: &Store, user_id: &str) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(user_id)))
        .update_expression("ADD passkey_count :minus_one")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":minus_one", n(-1));
    transact_update(update)
}

/// A transaction item that turns the user's second-factor flag off, only if it is on.
pub(crate) fn disable_second_factor_item(
    store: &Store,
    user_id: &str,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(user_id)))
        .update_expression("SET updated_at = :now REMOVE mfa_enabled_at")
        .condition_expression("attribute_exists(pk) AND attribute_exists(mfa_enabled_at)")
        .expression_attribute_values(":now", n(now));
    transact_update(update)
}

/// The password-backoff key of a service account; it cannot collide with a normalised address, which has an `@`.
pub fn service_backoff_key(tenant_id: &str, service_name: &str) -> String {
    format!("service:{tenant_id}/{service_name}")
}

fn service_pk(tenant_id: &str, service_name: &str) -> String {
    format!("SERVICE#{tenant_id}#{service_name}")
}

/// The id of the service account `service_name` of `tenant_id`, if any (its marker). One round trip.
pub async fn id_for_service(store: &Store, tenant_id: &str, service_name: &str) -> Result<Option<String>, Error> {
    Ok(store
        .get::<EmailMarker>(&service_pk(tenant_id, service_name), MARKER_SK)
        .await?
        .map(|m| m.user_id))
}

/// Transaction items that create a service account and claim its name within its tenant; the claim fails if the
/// name is taken there.
pub(crate) fn create_service_items(store: &Store, user: &User) -> Result<Vec<TransactWriteItem>, Error> {
    let (Some(tenant_id), Some(service_name)) = (&user.tenant_id, &user.service_name) else {
        return Err(Error::dependency(
            "creating a service account",
            std::io::Error::other("a service account needs a tenant and a name"),
        ));
    };
    user_with_marker(store, user, service_pk(tenant_id, service_name))
}

/// A transaction item that records the latest "you already have an account" notice for an address. It exists so
/// that registering a verified address makes the same calls as registering a new one (DESIGN §6: a request does
/// the same writes for a known and an unknown address); it expires with the hour.
pub(crate) fn notice_item(store: &Store, email: &Email, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let expires_at = now + 3_600;
    let item = [
        ("pk", s(email_pk(email))),
        ("sk", s("NOTICE")),
        ("noticed_at", n(now)),
        ("expires_at", n(expires_at)),
        ("expiry_bucket", n(super::expiry_bucket(expires_at))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let put = built(Put::builder().table_name(store.table()).set_item(Some(item)).build())?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Transaction items that create a user and claim its address; the claim fails if the address is taken.
pub(crate) fn create_items(store: &Store, user: &User) -> Result<Vec<TransactWriteItem>, Error> {
    let email = Email::parse(&user.email)?;
    user_with_marker(store, user, email_pk(&email))
}

/// Transaction items that create `user` and its marker at `marker_pk` (an address, or a service name in its
/// tenant), both only if absent: the marker is what makes the name unique (DESIGN §6).
fn user_with_marker(store: &Store, user: &User, marker_pk: String) -> Result<Vec<TransactWriteItem>, Error> {
    let marker = EmailMarker {
        pk: marker_pk,
        sk: MARKER_SK.to_owned(),
        user_id: user.id.clone(),
        profile: None,
    };
    let put = |item| -> Result<TransactWriteItem, Error> {
        let put = built(
            Put::builder()
                .table_name(store.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    };
    Ok(vec![put(encode(&marker)?)?, put(encode(user)?)?])
}

/// The condition that a user's password is still the one `user` was read with, so that a write decided on that
/// read cannot overwrite a concurrent change (a contested registration, a reset).
fn same_password(update: UpdateBuilder, user: &User) -> (UpdateBuilder, &'static str) {
    match &user.password_hash {
        Some(hash) => (
            update.expression_attribute_values(":read_hash", s(hash)),
            "password_hash = :read_hash",
        ),
        None => (update, "attribute_not_exists(password_hash)"),
    }
}

type UpdateBuilder = aws_sdk_dynamodb::types::builders::UpdateBuilder;

fn transact_update(update: UpdateBuilder) -> Result<TransactWriteItem, Error> {
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// A transaction item that rewrites a still-unverified user as `user` says (password, name, tenant name), only if
/// it is still unverified with the password `read` had.
pub(crate) fn replace_pending_item(
    store: &Store,
    read: &User,
    user: &User,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .expression_attribute_values(":false", AttributeValue::Bool(false))
        .expression_attribute_values(":now", n(now));
    let (mut update, guard) = same_password(update, read);
    update = update.condition_expression(format!("attribute_exists(pk) AND email_verified = :false AND {guard}"));
    let mut set = "SET updated_at = :now".to_owned();
    let mut remove = Vec::new();
    // `name` is a DynamoDB reserved word, so every field goes through a placeholder.
    for (field, value) in [
        ("password_hash", &user.password_hash),
        ("name", &user.name),
        ("tenant_name", &user.tenant_name),
    ] {
        match value {
            Some(value) => {
                set.push_str(&format!(", #{field} = :{field}"));
                update = update.expression_attribute_values(format!(":{field}"), s(value));
            }
            None => remove.push(format!("#{field}")),
        }
        update = update.expression_attribute_names(format!("#{field}"), field);
    }
    let expression = if remove.is_empty() {
        set
    } else {
        format!("{set} REMOVE {}", remove.join(", "))
    };
    transact_update(update.update_expression(expression))
}

/// What proved the mailbox of an account being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxProof {
    /// The code sent in answer to the registration that set the pending password.
    RegistrationCode,
    /// A sign-in code or a magic link, which no registration asked for: the pending password was set by a request
    /// that proved nothing, so it must not survive (DESIGN §7, no pre-hijacking).
    SignIn,
}

/// A transaction item that marks an unverified user verified, keeping its pending password only for the
/// registration code; `None` when the user is already verified and nothing needs writing. Conditional on the
/// password read, so a registration contested meanwhile fails the transaction instead of surviving it. `joined` is
/// the same user after [`User::join`] when the verification also puts it in its new tenant (one item: a
/// transaction cannot touch the user twice).
pub(crate) fn verify_item(
    store: &Store,
    user: &User,
    proof: MailboxProof,
    joined: Option<&User>,
    now: UnixTime,
) -> Result<Option<TransactWriteItem>, Error> {
    if user.email_verified {
        return Ok(None);
    }
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .expression_attribute_values(":false", AttributeValue::Bool(false))
        .expression_attribute_values(":now", n(now));
    let (update, guard) = same_password(update, user);
    let (update, join_set, join_guard) = join_clause(update, joined)?;
    let (update, expression) = match proof {
        MailboxProof::RegistrationCode => (
            update,
            format!("SET email_verified = :true, updated_at = :now{join_set}"),
        ),
        // The names came from the same unproven request as the password (`name` is a reserved word).
        MailboxProof::SignIn => (
            update.expression_attribute_names("#name", "name"),
            format!("SET email_verified = :true, updated_at = :now{join_set} REMOVE password_hash, #name, tenant_name"),
        ),
    };
    transact_update(update.update_expression(expression).condition_expression(format!(
        "attribute_exists(pk) AND email_verified = :false AND {guard}{join_guard}"
    )))
    .map(Some)
}

/// The SET fragment and condition that put a user in its tenant, only if it is in none yet (`role` and `status`
/// are reserved words).
fn join_clause(
    update: UpdateBuilder,
    joined: Option<&User>,
) -> Result<(UpdateBuilder, &'static str, &'static str), Error> {
    let Some(user) = joined else {
        return Ok((update, "", ""));
    };
    let (Some(tenant_id), Some(role), Some(gsi1pk), Some(gsi1sk)) =
        (&user.tenant_id, user.role, &user.gsi1pk, &user.gsi1sk)
    else {
        return Err(Error::dependency(
            "joining a tenant",
            std::io::Error::other("the user has no tenant to join"),
        ));
    };
    let update = update
        .expression_attribute_names("#role", "role")
        .expression_attribute_values(":tenant", s(tenant_id))
        .expression_attribute_values(":role", s(role.as_str()))
        .expression_attribute_values(":gsi1pk", s(gsi1pk))
        .expression_attribute_values(":gsi1sk", s(gsi1sk));
    Ok((
        update,
        ", tenant_id = :tenant, #role = :role, gsi1pk = :gsi1pk, gsi1sk = :gsi1sk",
        " AND attribute_not_exists(tenant_id)",
    ))
}

/// A transaction item that puts an existing user (made before tenancy) in the tenant `joined` names, only if it
/// is in none yet.
pub(crate) fn join_tenant_item(store: &Store, joined: &User, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&joined.id)))
        .expression_attribute_values(":now", n(now));
    let (update, join_set, join_guard) = join_clause(update, Some(joined))?;
    transact_update(
        update
            .update_expression(format!("SET updated_at = :now{join_set}"))
            .condition_expression(format!("attribute_exists(pk){join_guard}")),
    )
}

/// Which epochs a password write moves to (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    /// Sessions only (a password change).
    Sessions,
    /// Sessions and personal access tokens (a reset, or a change that asks for it).
    SessionsAndTokens,
}

/// A transaction item that sets a new password and moves to a new session epoch (and token epoch), which revokes
/// every session (and PAT) made before it. The condition on the old epoch makes two concurrent changes serialise.
pub(crate) fn set_password_item(
    store: &Store,
    user: &User,
    password_hash: &str,
    revoke: Revoke,
    verify_email: bool,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let token_epoch = match revoke {
        Revoke::Sessions => user.token_epoch,
        Revoke::SessionsAndTokens => user.token_epoch + 1,
    };
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression(
            "SET password_hash = :hash, session_epoch = :new_epoch, token_epoch = :token_epoch, \
             updated_at = :now, email_verified = :verified",
        )
        .condition_expression("session_epoch = :old_epoch")
        .expression_attribute_values(":hash", s(password_hash))
        .expression_attribute_values(":new_epoch", n(user.session_epoch + 1))
        .expression_attribute_values(":old_epoch", n(user.session_epoch))
        .expression_attribute_values(":token_epoch", n(token_epoch))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":verified", AttributeValue::Bool(verify_email || user.email_verified));
    transact_update(update)
}

/// A transaction item that moves a user to new session and token epochs, ending every session and personal access
/// token (a directory account whose entry is gone), only if the session epoch is still the one read.
pub(crate) fn end_everything_item(store: &Store, user: &User, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression("SET session_epoch = :new_epoch, token_epoch = :token_epoch, updated_at = :now")
        .condition_expression("session_epoch = :old_epoch")
        .expression_attribute_values(":new_epoch", n(user.session_epoch + 1))
        .expression_attribute_values(":old_epoch", n(user.session_epoch))
        .expression_attribute_values(":token_epoch", n(user.token_epoch + 1))
        .expression_attribute_values(":now", n(now));
    transact_update(update)
}

/// Transaction items that move an account to the address `new`: the account (only if it still has the address it
/// was read with), the old address's marker (only if it is still this account's) and the new one's (only if the
/// address is free). Emailed codes of the old address are left to expire.
pub(crate) fn change_email_items(
    store: &Store,
    user: &User,
    new: &Email,
    now: UnixTime,
) -> Result<Vec<TransactWriteItem>, Error> {
    let old = Email::parse(&user.email)?;
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression("SET email = :new, updated_at = :now")
        .condition_expression("email = :old")
        .expression_attribute_values(":new", s(new.as_str()))
        .expression_attribute_values(":old", s(old.as_str()))
        .expression_attribute_values(":now", n(now));
    let old_marker = Delete::builder()
        .table_name(store.table())
        .set_key(Some(key(&email_pk(&old), MARKER_SK)))
        .condition_expression("user_id = :user")
        .expression_attribute_values(":user", s(&user.id));
    let marker = EmailMarker {
        pk: email_pk(new),
        sk: MARKER_SK.to_owned(),
        user_id: user.id.clone(),
        profile: None,
    };
    let new_marker = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(&marker)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(vec![
        transact_update(update)?,
        TransactWriteItem::builder().delete(built(old_marker.build())?).build(),
        TransactWriteItem::builder().put(built(new_marker.build())?).build(),
    ])
}

/// A transaction item that moves a user to a new session epoch, revoking every session started before it.
pub(crate) fn bump_epoch_item(
    store: &Store,
    user: &User,
    new_epoch: i64,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression("SET session_epoch = :new_epoch, updated_at = :now")
        .condition_expression("session_epoch = :old_epoch")
        .expression_attribute_values(":new_epoch", n(new_epoch))
        .expression_attribute_values(":old_epoch", n(user.session_epoch))
        .expression_attribute_values(":now", n(now));
    transact_update(update)
}

/// A transaction item that moves a user of `tenant_id` from the role it was read with to `role`, only if it still
/// holds that role in that tenant and is active; a demotion also moves to a new session epoch, because the
/// account's JWTs carry the old role (DESIGN §5).
pub(crate) fn set_role_item(store: &Store, read: &User, role: Role, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let (Some(tenant_id), Some(old)) = (&read.tenant_id, read.role) else {
        return Err(Error::NotFound);
    };
    let demotion = role.rank() < old.rank();
    let new_epoch = if demotion {
        read.session_epoch + 1
    } else {
        read.session_epoch
    };
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&read.id)))
        .update_expression("SET #role = :role, session_epoch = :new_epoch, updated_at = :now")
        .condition_expression(
            "tenant_id = :tenant AND #role = :old AND session_epoch = :old_epoch AND \
             (attribute_not_exists(#status) OR #status = :active)",
        )
        .expression_attribute_names("#role", "role")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":role", s(role.as_str()))
        .expression_attribute_values(":old", s(old.as_str()))
        .expression_attribute_values(":tenant", s(tenant_id))
        .expression_attribute_values(":new_epoch", n(new_epoch))
        .expression_attribute_values(":old_epoch", n(read.session_epoch))
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":now", n(now));
    transact_update(update)
}

/// Stores a re-hash made with current parameters; best effort, the login already succeeded.
pub async fn upgrade_password_hash(store: &Store, user: &User, password_hash: &str) -> Result<(), Error> {
    let Some(old) = &user.password_hash else {
        return Ok(());
    };
    store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression("SET password_hash = :new")
        .condition_expression("password_hash = :old")
        .expression_attribute_values(":new", s(password_hash))
        .expression_attribute_values(":old", s(old))
        .send()
        .await
        .map(|_| ())
        .or_else(|err| {
            if super::is_condition_failure(&err) {
                Ok(())
            } else {
                Err(Error::dependency("dynamodb UpdateItem", err))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_uuid_v4() {
        let id = new_user_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_user_id());
    }

    #[test]
    fn users_round_trip_through_serde_dynamo() {
        let email = Email::parse("a@example.com").unwrap();
        let user = User::new(
            new_user_id(),
            &email,
            Some("A".into()),
            None,
            Some("$argon2id$x".into()),
            10,
        );
        let item = encode(&user).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), &format!("USER#{}", user.id));
        assert!(!item.contains_key("tenant_name"));
        let back: User = super::super::decode(item).unwrap();
        assert_eq!(back.email, "a@example.com");
        assert_eq!(back.view().created_at, "1970-01-01T00:00:10Z");
    }

    #[test]
    fn the_unchanged_check_covers_every_attribute_a_user_can_lack() {
        let email = Email::parse("a@example.com").unwrap();
        let bare = User::new(new_user_id(), &email, None, None, None, 10);
        let mut full = bare.clone();
        full.name = Some("A".into());
        full.tenant_name = Some("T".into());
        full.password_hash = Some("$argon2id$x".into());
        full.tenant_id = Some("t".into());
        full.role = Some(Role::Root);
        full.service_name = Some("s".into());
        full.mfa_enabled_at = Some(5);
        full.idp = Some("i".into());
        full.gsi1pk = Some("g".into());
        full.gsi1sk = Some("g".into());
        let (bare, full) = (encode(&bare).unwrap(), encode(&full).unwrap());
        let optional: Vec<_> = full.keys().filter(|k| !bare.contains_key(*k)).collect();
        assert_eq!(optional.len(), ABSENT_WHEN_NONE.len() - 1, "{optional:?}");
        for field in optional {
            assert!(
                ABSENT_WHEN_NONE.contains(&field.as_str()),
                "{field} is not checked for absence"
            );
        }
    }

    #[test]
    fn the_unchanged_check_compares_every_field_of_the_copy() {
        let email = Email::parse("a@example.com").unwrap();
        let user = User::new(new_user_id(), &email, None, None, Some("$argon2id$x".into()), 10);
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let store = Store::new(aws_sdk_dynamodb::Client::new(&aws), "t".to_owned());
        let item = unchanged_check_item(&store, &user).unwrap();
        let check = item.condition_check().unwrap();
        let names = check.expression_attribute_names().unwrap();
        for field in encode(&user).unwrap().keys() {
            assert!(names.values().any(|n| n == field), "{field} is not compared");
        }
        assert!(names.values().any(|n| n == "deleting_at"));
        assert!(names.values().any(|n| n == "mfa_enabled_at"));
        assert!(check.condition_expression().contains("attribute_not_exists(#u"));
    }
}
