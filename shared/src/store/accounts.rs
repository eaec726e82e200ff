//! A tenant's accounts as managers see them (user items, `USER#<id>` / `PROFILE`): one page of the tenant's GSI1
//! partition, a manager's change, an invited account, and deletion in two steps (mark the account deleting, which
//! ends every credential at once, then remove what it owns in batches).

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use serde::Deserialize;

use super::users::{self, accounts_partition, email_pk, AccountKind, AccountStatus, User};
use super::{built, decode, encode, key, n, s, Item, Store};
use crate::clock::UnixTime;
use crate::email::Email;
use crate::tenancy::Role;
use crate::Error;

/// A user item as account management reads it: the user, and whether its deletion has started.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account.
    pub user: User,
    /// Set once a deletion has started: every credential already fails, and the rest is being removed.
    pub deleting: bool,
}

/// The attributes account management adds to a user item, read beside [`User`].
#[derive(Deserialize)]
struct Marks {
    #[serde(default)]
    deleting_at: Option<UnixTime>,
}

fn account_from(item: Item) -> Result<Account, Error> {
    let marks: Marks = decode(item.clone())?;
    Ok(Account {
        user: decode(item)?,
        deleting: marks.deleting_at.is_some(),
    })
}

/// Reads an account with a strongly consistent read (role checks never read a GSI). One round trip.
pub async fn get(store: &Store, id: &str) -> Result<Option<Account>, Error> {
    let output = store
        .client()
        .get_item()
        .table_name(store.table())
        .set_key(Some(users::user_key(id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb GetItem", e))?;
    output.item.map(account_from).transpose()
}

/// One page of a tenant's accounts in creation order, starting after the GSI1 sort key `after`, and the sort key
/// to continue from (`None` on the last page). Eventually consistent (GSI): for display only. One round trip.
pub async fn page(
    store: &Store,
    tenant_id: &str,
    limit: i32,
    after: Option<&str>,
) -> Result<(Vec<Account>, Option<String>), Error> {
    let partition = accounts_partition(tenant_id);
    let start = after.map(|sort| {
        // The table key of the item the page starts after: its user id is the sort key's tail.
        let id = sort.split_once('#').map(|(_, id)| id).unwrap_or_default();
        let mut start = users::user_key(id);
        start.insert("gsi1pk".to_owned(), s(&partition));
        start.insert("gsi1sk".to_owned(), s(sort));
        start
    });
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :partition")
        .expression_attribute_values(":partition", s(&partition))
        .scan_index_forward(true)
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb Query", e))?;
    let accounts = output
        .items
        .unwrap_or_default()
        .into_iter()
        .map(account_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next = output
        .last_evaluated_key
        .and_then(|mut last| last.remove("gsi1sk"))
        .and_then(|sort| sort.as_s().ok().cloned());
    Ok((accounts, next))
}

/// What a manager changes on an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// The new role.
    pub role: Option<Role>,
    /// The new display name (`Some(None)` removes it).
    pub name: Option<Option<String>>,
    /// The new status.
    pub status: Option<AccountStatus>,
    /// Move to a new session epoch (a demotion, a disable).
    pub bump_sessions: bool,
    /// Move to a new token epoch (a disable).
    pub bump_tokens: bool,
}

type UpdateBuilder = aws_sdk_dynamodb::types::builders::UpdateBuilder;

/// The condition that the account is still as `read` was when the decision was made: same tenant, role, status
/// and session epoch, and not being deleted, with the names and values it uses. A concurrent change makes the
/// write fail instead of overriding it.
struct Guard {
    condition: String,
    values: [(&'static str, AttributeValue); 4],
}

const GUARD_NAMES: [(&str, &str); 2] = [("#role", "role"), ("#status", "status")];

fn guard(read: &User) -> Result<Guard, Error> {
    let (Some(tenant), Some(role)) = (&read.tenant_id, read.role) else {
        return Err(Error::NotFound);
    };
    // Items written before statuses existed are active without the attribute.
    let status_guard = if read.status == AccountStatus::Active {
        "(attribute_not_exists(#status) OR #status = :read_status)"
    } else {
        "#status = :read_status"
    };
    Ok(Guard {
        condition: format!(
            "attribute_exists(pk) AND attribute_not_exists(deleting_at) AND tenant_id = :read_tenant AND \
             #role = :read_role AND {status_guard} AND session_epoch = :read_epoch"
        ),
        values: [
            (":read_tenant", s(tenant)),
            (":read_role", s(role.as_str())),
            (":read_status", s(status_str(read.status))),
            (":read_epoch", n(read.session_epoch)),
        ],
    })
}

fn as_read(mut update: UpdateBuilder, read: &User) -> Result<(UpdateBuilder, String), Error> {
    let guard = guard(read)?;
    for (name, field) in GUARD_NAMES {
        update = update.expression_attribute_names(name, field);
    }
    for (name, value) in guard.values {
        update = update.expression_attribute_values(name, value);
    }
    Ok((update, guard.condition))
}

/// A transaction item that sets an administrator's new password on the account `read` and moves both of its
/// epochs (its sessions and PATs end), only if the account is still as read: a promotion meanwhile would make it
/// a peer the administrator may not act on.
pub(crate) fn set_password_item(
    store: &Store,
    read: &User,
    password_hash: &str,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&read.id)));
    let (update, condition) = as_read(update, read)?;
    let update = update
        .update_expression(
            "SET password_hash = :hash, session_epoch = :session_epoch, token_epoch = :token_epoch, \
             updated_at = :now",
        )
        .condition_expression(condition)
        .expression_attribute_values(":hash", s(password_hash))
        .expression_attribute_values(":session_epoch", n(read.session_epoch + 1))
        .expression_attribute_values(":token_epoch", n(read.token_epoch + 1))
        .expression_attribute_values(":now", n(now));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// A transaction item that removes every second factor from the account `read` (2FA off, no passkeys) and moves
/// it to a new session epoch, only if it is still as read and has the passkeys that were read (one registered
/// meanwhile would survive the reset).
pub(crate) fn reset_second_factors_item(store: &Store, read: &User, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&read.id)));
    let (update, condition) = as_read(update, read)?;
    let update = update
        .update_expression(
            "SET updated_at = :now, passkey_count = :zero, session_epoch = :new_epoch REMOVE mfa_enabled_at",
        )
        .condition_expression(format!(
            "{condition} AND (attribute_not_exists(passkey_count) OR passkey_count = :read_count)"
        ))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":read_count", n(read.passkey_count))
        .expression_attribute_values(":new_epoch", n(read.session_epoch + 1));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// A transaction item that holds only while the account `read` is as read, with the same token epoch: what a
/// token minted for it needs, so that a deletion, a disable or a role change meanwhile fails the mint.
pub(crate) fn unchanged_item(store: &Store, read: &User) -> Result<TransactWriteItem, Error> {
    let guard = guard(read)?;
    let mut check = ConditionCheck::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&read.id)))
        .condition_expression(format!("{} AND token_epoch = :read_token_epoch", guard.condition))
        .expression_attribute_values(":read_token_epoch", n(read.token_epoch));
    for (name, field) in GUARD_NAMES {
        check = check.expression_attribute_names(name, field);
    }
    for (name, value) in guard.values {
        check = check.expression_attribute_values(name, value);
    }
    Ok(TransactWriteItem::builder()
        .condition_check(built(check.build())?)
        .build())
}

fn status_str(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Invited => "invited",
        AccountStatus::Active => "active",
        AccountStatus::Disabled => "disabled",
    }
}

/// A transaction item that applies `change` to the account `read`, only if it is still as read.
pub(crate) fn change_item(
    store: &Store,
    read: &User,
    change: &Change,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&read.id)))
        .expression_attribute_values(":now", n(now));
    let (mut update, condition) = as_read(update, read)?;
    let mut set = vec!["updated_at = :now".to_owned()];
    let mut remove = Vec::new();
    if let Some(role) = change.role {
        set.push("#role = :role".to_owned());
        update = update.expression_attribute_values(":role", s(role.as_str()));
    }
    if let Some(status) = change.status {
        set.push("#status = :status".to_owned());
        update = update.expression_attribute_values(":status", s(status_str(status)));
    }
    match &change.name {
        Some(Some(name)) => {
            set.push("#name = :name".to_owned());
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name));
        }
        Some(None) => {
            remove.push("#name");
            update = update.expression_attribute_names("#name", "name");
        }
        None => {}
    }
    if change.bump_sessions {
        set.push("session_epoch = :session_epoch".to_owned());
        update = update.expression_attribute_values(":session_epoch", n(read.session_epoch + 1));
    }
    if change.bump_tokens {
        set.push("token_epoch = :token_epoch".to_owned());
        update = update.expression_attribute_values(":token_epoch", n(read.token_epoch + 1));
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    let update = update.update_expression(expression).condition_expression(condition);
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// Marks the account `read` deleting: disabled, both epochs bumped (so every session, JWT and PAT fails at once),
/// and `deleting_at` set, only if it is still as read. `false` when it changed meanwhile. One round trip.
pub async fn mark_deleting(store: &Store, read: &User, now: UnixTime) -> Result<bool, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&read.id)));
    let (update, condition) = as_read(update, read)?;
    let update = update
        .update_expression(
            "SET #status = :disabled, deleting_at = :now, updated_at = :now, session_epoch = :session_epoch, \
             token_epoch = :token_epoch",
        )
        .condition_expression(condition)
        .expression_attribute_values(":disabled", s("disabled"))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":session_epoch", n(read.session_epoch + 1))
        .expression_attribute_values(":token_epoch", n(read.token_epoch + 1));
    let item = TransactWriteItem::builder().update(built(update.build())?).build();
    store.transact(vec![item]).await
}

/// A transaction item that stores a new (invited) account; it has no email marker until it accepts.
pub(crate) fn create_item(store: &Store, user: &User) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(user)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// A transaction item that makes an invited account active and verified with its first password (and name),
/// only if it is still invited and not being deleted.
pub(crate) fn accept_item(
    store: &Store,
    user: &User,
    password_hash: &str,
    name: Option<&str>,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let mut update = Update::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&user.id)))
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":invited", s("invited"))
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":hash", s(password_hash))
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .expression_attribute_values(":now", n(now))
        .condition_expression("#status = :invited AND attribute_not_exists(deleting_at)");
    let mut expression =
        "SET #status = :active, password_hash = :hash, email_verified = :true, updated_at = :now".to_owned();
    if let Some(name) = name {
        expression.push_str(", #name = :name");
        update = update
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name));
    }
    let update = update.update_expression(expression);
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// Who holds an address now, as accepting an invitation finds it.
pub enum AddressHolder {
    /// Nobody: the invited account claims the marker.
    Nobody,
    /// A registration whose mailbox nobody has proven (its password set by an unproven request): accepting the
    /// invitation proves the mailbox, so the pending account is removed and the marker moves.
    Pending(Box<User>),
}

/// Transaction items that give `email` to `user_id`: a new marker, or the marker taken from a pending
/// registration (which is deleted, only if still unverified).
pub(crate) fn claim_address_items(
    store: &Store,
    email: &Email,
    user_id: &str,
    holder: &AddressHolder,
) -> Result<Vec<TransactWriteItem>, Error> {
    match holder {
        AddressHolder::Nobody => {
            let item = [("pk", s(email_pk(email))), ("sk", s("USER")), ("user_id", s(user_id))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            let put = Put::builder()
                .table_name(store.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)");
            Ok(vec![TransactWriteItem::builder().put(built(put.build())?).build()])
        }
        AddressHolder::Pending(pending) => {
            let marker = Update::builder()
                .table_name(store.table())
                .set_key(Some(key(&email_pk(email), "USER")))
                .update_expression("SET user_id = :new")
                .condition_expression("user_id = :pending")
                .expression_attribute_values(":new", s(user_id))
                .expression_attribute_values(":pending", s(&pending.id));
            let remove = Delete::builder()
                .table_name(store.table())
                .set_key(Some(users::user_key(&pending.id)))
                .condition_expression("email_verified = :false")
                .expression_attribute_values(":false", AttributeValue::Bool(false));
            Ok(vec![
                TransactWriteItem::builder().update(built(marker.build())?).build(),
                TransactWriteItem::builder().delete(built(remove.build())?).build(),
            ])
        }
    }
}

/// The most keys one BatchWriteItem deletes.
const BATCH: usize = 25;

/// Removes what a deleting account owns, in BatchWriteItem calls of up to 25 deletes, at most `max_batches` of
/// them: its sessions and each session's rotated-out hashes (`PREV#` items), found through GSI1
/// `USER#<id>#SESSIONS`; its PATs (GSI1 `USER#<id>#PATS`) and scoped tokens (GSI1 `USER#<id>#SCOPED`); its events; its own partition besides the profile (second
/// factors) and its second-factor backoff record; what its address partition holds besides the marker (codes,
/// notices); and its login-failure record `failures_key`. `true` when nothing is left but the user item
/// and its markers. Safe to run again: every step finds only what is still there.
/// Round trips: one GSI query per 25 sessions and one partition query per session, one per 25 PATs, one for its
/// own partition, one for the address partition, and one per batch (more when DynamoDB leaves items unprocessed).
pub async fn purge(store: &Store, user: &User, failures_key: &str, max_batches: usize) -> Result<bool, Error> {
    let mut purge = Purge {
        store,
        pending: Vec::new(),
        batches_left: max_batches,
    };
    let mut start = None;
    loop {
        let (sessions, next) = gsi1_keys(store, format!("USER#{}#SESSIONS", user.id), start).await?;
        for session in sessions {
            let Some(pk) = session.get("pk").and_then(|v| v.as_s().ok()) else {
                continue;
            };
            for item in partition_keys(store, pk, None).await? {
                if !purge.add(item).await? {
                    return Ok(false);
                }
            }
        }
        match next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    // Its PATs, and the scoped tokens it created (the ledger that caps them is in its own partition, below).
    for partition in [
        format!("USER#{}#PATS", user.id),
        super::scoped_tokens::creator_partition(&user.id),
    ] {
        let mut start = None;
        loop {
            let (tokens, next) = gsi1_keys(store, partition.clone(), start).await?;
            for item in tokens {
                if !purge.add(item).await? {
                    return Ok(false);
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    // Each passkey's credential marker, so the credential can be registered again and never names a deleted owner.
    for passkey in super::passkeys::list(store, &user.id).await? {
        if let Some(marker) = super::passkeys::marker_key_of(&passkey) {
            if !purge.add(marker).await? {
                return Ok(false);
            }
        }
    }
    // Its events: the account's history goes with it (the deletion then records the one event that stays).
    for item in partition_keys(store, &super::events::partition(&user.id), None).await? {
        if !purge.add(item).await? {
            return Ok(false);
        }
    }
    // Each external identity's marker, so the identity can sign up again and never names a deleted owner.
    for identity in super::identities::list(store, &user.id).await? {
        if !purge.add(super::identities::marker_key_of(&identity)).await? {
            return Ok(false);
        }
    }
    // The user's own partition besides its profile: its second factors, a pending enrolment, its passkeys.
    for item in partition_keys(store, &format!("USER#{}", user.id), Some("PROFILE")).await? {
        if !purge.add(item).await? {
            return Ok(false);
        }
    }
    // The address partition (codes, notices) and the address's failure record belong to whoever holds the
    // address. An invited account never did: its address may be another tenant's account, whose codes and
    // backoff a deletion must not touch. Strongly consistent; the marker goes last (in `finish`), so a resumed
    // deletion sees the same answer.
    let owns_address = match Email::parse(&user.email) {
        Ok(email) => users::id_for_email(store, &email).await?.as_deref() == Some(user.id.as_str()),
        Err(_) => false,
    };
    if owns_address {
        if let Ok(email) = Email::parse(&user.email) {
            for item in partition_keys(store, &email_pk(&email), Some("USER")).await? {
                if !purge.add(item).await? {
                    return Ok(false);
                }
            }
        }
    }
    if !purge
        .add(super::login_failures::failures_key(
            &super::login_failures::second_factor_key(&user.id),
        ))
        .await?
    {
        return Ok(false);
    }
    let owns_backoff = owns_address || user.kind == AccountKind::Service;
    if owns_backoff && !purge.add(super::login_failures::failures_key(failures_key)).await? {
        return Ok(false);
    }
    purge.flush().await
}

/// Deletes the user item of a purged account, with its email marker when the marker is still its own and the
/// service-name marker `service_marker` (if any, `SERVICE#<tenant>#<name>` / `USER`), and `extra` (the deletion's
/// event, say), in one transaction.
/// `false` when the account changed meanwhile. Two round trips (the marker read, the transaction).
pub async fn finish(
    store: &Store,
    user: &User,
    service_marker: Option<String>,
    extra: Vec<TransactWriteItem>,
) -> Result<bool, Error> {
    let mut items = extra;
    let delete = Delete::builder()
        .table_name(store.table())
        .set_key(Some(users::user_key(&user.id)))
        .condition_expression("attribute_exists(deleting_at)");
    items.push(TransactWriteItem::builder().delete(built(delete.build())?).build());
    if let Ok(email) = Email::parse(&user.email) {
        // An invited account never held its address: the marker may be someone else's, and stays.
        if users::id_for_email(store, &email).await?.as_deref() == Some(user.id.as_str()) {
            let delete = Delete::builder()
                .table_name(store.table())
                .set_key(Some(key(&email_pk(&email), "USER")))
                .condition_expression("user_id = :id")
                .expression_attribute_values(":id", s(&user.id));
            items.push(TransactWriteItem::builder().delete(built(delete.build())?).build());
        }
    }
    if let Some(marker) = service_marker {
        let delete = Delete::builder()
            .table_name(store.table())
            .set_key(Some(key(&marker, "USER")))
            .condition_expression("attribute_not_exists(pk) OR user_id = :id")
            .expression_attribute_values(":id", s(&user.id));
        items.push(TransactWriteItem::builder().delete(built(delete.build())?).build());
    }
    store.transact(items).await
}

/// Keys waiting to be deleted, and the batches this request may still spend.
struct Purge<'a> {
    store: &'a Store,
    pending: Vec<Item>,
    batches_left: usize,
}

impl Purge<'_> {
    /// Queues a key, deleting a full batch; `false` when the budget ran out.
    async fn add(&mut self, item: Item) -> Result<bool, Error> {
        self.pending.push(item);
        if self.pending.len() < BATCH {
            return Ok(true);
        }
        self.flush().await
    }

    /// Deletes what is queued, if the budget allows; `false` when it ran out or DynamoDB kept leaving items
    /// unprocessed (the next call finds them again).
    async fn flush(&mut self) -> Result<bool, Error> {
        if self.pending.is_empty() {
            return Ok(true);
        }
        if self.batches_left == 0 {
            return Ok(false);
        }
        self.batches_left -= 1;
        let keys = std::mem::take(&mut self.pending);
        delete_batch(self.store, keys).await
    }
}

/// One BatchWriteItem of deletes, retrying unprocessed items a few times with a growing pause. `false` when some
/// are still unprocessed.
async fn delete_batch(store: &Store, keys: Vec<Item>) -> Result<bool, Error> {
    let mut requests = keys
        .into_iter()
        .map(|k| {
            let delete = built(DeleteRequest::builder().set_key(Some(k)).build())?;
            Ok(WriteRequest::builder().delete_request(delete).build())
        })
        .collect::<Result<Vec<_>, Error>>()?;
    for attempt in 0..4u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
        let output = store
            .client()
            .batch_write_item()
            .request_items(store.table(), requests)
            .send()
            .await
            .map_err(|e| Error::dependency("dynamodb BatchWriteItem", e))?;
        requests = output
            .unprocessed_items
            .and_then(|mut u| u.remove(store.table()))
            .unwrap_or_default();
        if requests.is_empty() {
            return Ok(true);
        }
    }
    tracing::warn!(
        left = requests.len(),
        "a deletion batch stayed unprocessed; the next call continues"
    );
    Ok(false)
}

/// One page (up to 25) of the table keys in a GSI1 partition, and where the next page starts.
async fn gsi1_keys(store: &Store, partition: String, start: Option<Item>) -> Result<(Vec<Item>, Option<Item>), Error> {
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :partition")
        .expression_attribute_values(":partition", s(partition))
        .projection_expression("pk, sk")
        .limit(BATCH as i32)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| Error::dependency("dynamodb Query", e))?;
    Ok((keys_of(output.items.unwrap_or_default()), output.last_evaluated_key))
}

/// Every key in the partition `pk` except the item whose sort key is `keep`, with a strongly consistent query.
async fn partition_keys(store: &Store, pk: &str, keep: Option<&str>) -> Result<Vec<Item>, Error> {
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let output = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::dependency("dynamodb Query", e))?;
        found.extend(
            keys_of(output.items.unwrap_or_default())
                .into_iter()
                .filter(|k| keep.is_none() || k.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) != keep),
        );
        start = output.last_evaluated_key;
        if start.is_none() {
            return Ok(found);
        }
    }
}

fn keys_of(items: Vec<Item>) -> Vec<Item> {
    items
        .into_iter()
        .filter_map(|mut item| Some(key(item.remove("pk")?.as_s().ok()?, item.remove("sk")?.as_s().ok()?)))
        .collect()
}
