//! Sessions (`SESSION#<id>` / `SESSION`): what a refresh token belongs to.

use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, conditional, decode, encode, expiry_bucket, key, n, s, Store};
use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::store::databases::Database;
use crate::store::users::{AccountStatus, User};
use crate::tokens::{new_session_id, RefreshToken};
use crate::{secret, Error};

/// The sort key prefix of a session's rotated-out refresh-token hashes: one small item per rotation, kept until
/// the session's absolute end, so a replay of any token it ever had is recognised (reuse detection) without the
/// session item itself growing.
const PREVIOUS_SK_PREFIX: &str = "PREV#";

/// A login session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pk: String,
    sk: String,
    /// Session id, the first half of the refresh token.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// SHA-256 of the current refresh token.
    pub secret_hash: String,
    /// SHA-256 of the refresh token rotated out last, for the grace window after a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// Rotated-out hashes of sessions made before the history moved to `PREV#` items; read, never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_hashes: Vec<String>,
    /// When the current refresh token was issued.
    pub rotated_at: UnixTime,
    /// The user's session epoch when this session started (see [`User::session_epoch`]).
    pub epoch: i64,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Updated on every refresh.
    pub last_seen_at: UnixTime,
    /// The refresh token's expiry, never past `ends_at`; also the TTL attribute.
    pub expires_at: UnixTime,
    /// The absolute end of the session, however often it is refreshed.
    #[serde(default = "far_future")]
    pub ends_at: UnixTime,
    /// Expiry bucket (DESIGN §6), moved with `expires_at`.
    #[serde(default)]
    pub expiry_bucket: i64,
    /// Set when the session is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixTime>,
    /// Why it was revoked, when a flow said ([`ENDED_BY_LOGOUT`], ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// Client IP at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// User-Agent at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The owner's tenant when the session started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The database the session's tokens are scoped to, if any; its deletion ends the session at the next refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// That database's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
    /// When a directory last confirmed the owner (a directory account's sign-in, or a refresh that asked it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_checked_at: Option<UnixTime>,
    /// The end user of the customer's app a frontend session speaks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuid: Option<String>,
    /// GSI1 partition: the owner's sessions, for listing.
    gsi1pk: String,
    /// GSI1 sort: creation time, so listings come newest first.
    gsi1sk: String,
}

/// Why a session no longer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Revoked explicitly, or by a password change or reset.
    Revoked,
    /// Past its expiry (the item may still be in the table: TTL deletes late).
    Expired,
}

/// Sessions made before `ends_at` existed end when their refresh token does.
fn far_future() -> UnixTime {
    UnixTime::MAX
}

fn session_pk(id: &str) -> String {
    format!("SESSION#{id}")
}

const SESSION_SK: &str = "SESSION";

/// The key of a session item.
pub(crate) fn session_key(id: &str) -> super::Item {
    key(&session_pk(id), SESSION_SK)
}

impl Session {
    /// A new session for `user` and its first refresh token.
    pub fn start(
        user: &User,
        amr: &[&str],
        client: &ClientInfo,
        lifetime: Lifetime,
        now: UnixTime,
    ) -> (Self, RefreshToken) {
        let id = new_session_id();
        let refresh = RefreshToken::generate(&id, &user.id);
        let ends_at = now + lifetime.max;
        let expires_at = lifetime.refresh_expiry(ends_at, now);
        let session = Self {
            pk: session_pk(&id),
            sk: SESSION_SK.to_owned(),
            user_id: user.id.clone(),
            secret_hash: refresh.hash(),
            previous_hash: None,
            previous_hashes: Vec::new(),
            rotated_at: now,
            epoch: user.session_epoch,
            created_at: now,
            last_seen_at: now,
            expires_at,
            ends_at,
            expiry_bucket: expiry_bucket(expires_at),
            revoked_at: None,
            revoked_reason: None,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            tenant: user.tenant_id.clone(),
            db: None,
            ns: None,
            fuid: None,
            directory_checked_at: None,
            gsi1pk: format!("USER#{}#SESSIONS", user.id),
            gsi1sk: format!("{now:012}#{id}"),
            id,
        };
        (session, refresh)
    }

    /// Scopes the session's tokens to `database` (or to none).
    pub fn scope_to(&mut self, database: Option<&Database>) {
        self.db = database.map(|d| d.id.clone());
        self.ns = database.map(|d| d.namespace.clone());
    }

    /// Whether the session still authenticates its owner, given the owner's current epoch.
    pub fn check_active(&self, user: &User, now: UnixTime) -> Result<(), Inactive> {
        if self.revoked_at.is_some()
            || self.epoch < user.session_epoch
            || self.user_id != user.id
            || user.status == AccountStatus::Disabled
        {
            Err(Inactive::Revoked)
        } else if self.expires_at <= now || self.ends_at <= now {
            Err(Inactive::Expired)
        } else {
            Ok(())
        }
    }
}

/// How long sessions and their refresh tokens live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// A refresh token's lifetime, renewed by each rotation.
    pub refresh_ttl: i64,
    /// The session's absolute lifetime from its start.
    pub max: i64,
}

impl Lifetime {
    /// The deployment's lifetimes.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            refresh_ttl: config.refresh_token_ttl,
            max: config.session_max_lifetime,
        }
    }

    /// When a refresh token issued now expires: its own lifetime, cut at the session's end.
    fn refresh_expiry(self, ends_at: UnixTime, now: UnixTime) -> UnixTime {
        now.saturating_add(self.refresh_ttl).min(ends_at)
    }
}

/// Reads a session.
pub async fn get(store: &Store, id: &str) -> Result<Option<Session>, Error> {
    store.get(&session_pk(id), SESSION_SK).await
}

/// Stores a new session.
pub async fn create(store: &Store, session: &Session) -> Result<(), Error> {
    store.put(session).await
}

/// A transaction item that stores a new session.
pub(crate) fn create_item(store: &Store, session: &Session) -> Result<TransactWriteItem, Error> {
    let put = Put::builder()
        .table_name(store.table())
        .set_item(Some(encode(session)?))
        .condition_expression("attribute_not_exists(pk)");
    Ok(TransactWriteItem::builder().put(built(put.build())?).build())
}

/// A transaction item that moves a session to a new epoch, so it survives a password change.
pub(crate) fn move_to_epoch_item(store: &Store, session_id: &str, epoch: i64) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(session_key(session_id)))
        .update_expression("SET epoch = :epoch")
        .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
        .expression_attribute_values(":epoch", n(epoch));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// The result of trying to rotate a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// This request rotated the token.
    Rotated(Box<Session>),
    /// Another request changed the session first; here is what it looks like now.
    Lost(Option<Box<Session>>),
}

/// Replaces the refresh-token hash, only if it is still the one read and the session is not revoked, and records
/// the old hash in the session's history, in one transaction. The new expiry never passes the session's end.
/// One round trip.
pub async fn rotate(
    store: &Store,
    session: &Session,
    new_hash: &str,
    lifetime: Lifetime,
    directory_checked_at: Option<UnixTime>,
    now: UnixTime,
) -> Result<Rotation, Error> {
    rotate_scoped(store, session, new_hash, lifetime, None, directory_checked_at, now).await
}

/// [`rotate`], and when `scope` is given, scopes the session to that database (or to none) in the same write.
/// One round trip.
pub async fn rotate_scoped(
    store: &Store,
    session: &Session,
    new_hash: &str,
    lifetime: Lifetime,
    scope: Option<Option<&Database>>,
    directory_checked_at: Option<UnixTime>,
    now: UnixTime,
) -> Result<Rotation, Error> {
    // A session made before `ends_at` existed gets one from its start.
    let ends_at = session.ends_at.min(session.created_at.saturating_add(lifetime.max));
    let expires_at = lifetime.refresh_expiry(ends_at, now);
    let mut expression = "SET secret_hash = :new, previous_hash = :presented, rotated_at = :now, \
                          last_seen_at = :now, expires_at = :expires, expiry_bucket = :bucket, ends_at = :ends"
        .to_owned();
    let mut update = Update::builder();
    if let Some(checked) = directory_checked_at {
        expression.push_str(", directory_checked_at = :checked");
        update = update.expression_attribute_values(":checked", n(checked));
    }
    match scope {
        Some(Some(database)) => {
            expression.push_str(", db = :db, ns = :ns");
            update = update
                .expression_attribute_values(":db", s(&database.id))
                .expression_attribute_values(":ns", s(&database.namespace));
        }
        Some(None) => expression.push_str(" REMOVE db, ns"),
        None => {}
    }
    let update = update
        .table_name(store.table())
        .set_key(Some(session_key(&session.id)))
        .update_expression(expression)
        .condition_expression("secret_hash = :presented AND attribute_not_exists(revoked_at)")
        .expression_attribute_values(":new", s(new_hash))
        .expression_attribute_values(":presented", s(&session.secret_hash))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":expires", n(expires_at))
        .expression_attribute_values(":bucket", n(expiry_bucket(expires_at)))
        .expression_attribute_values(":ends", n(ends_at))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    let history_ends = ends_at;
    let history = Put::builder().table_name(store.table()).set_item(Some(
        [
            ("pk", s(session_pk(&session.id))),
            ("sk", s(format!("{PREVIOUS_SK_PREFIX}{}", session.secret_hash))),
            ("expires_at", n(history_ends)),
            ("expiry_bucket", n(expiry_bucket(history_ends))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    ));
    let result = store
        .client()
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(built(update.build())?).build())
        .transact_items(TransactWriteItem::builder().put(built(history.build())?).build())
        .send()
        .await;
    match result {
        Ok(_) => {
            let mut rotated = session.clone();
            rotated.previous_hash = Some(std::mem::replace(&mut rotated.secret_hash, new_hash.to_owned()));
            rotated.rotated_at = now;
            rotated.last_seen_at = now;
            rotated.expires_at = expires_at;
            rotated.expiry_bucket = expiry_bucket(expires_at);
            rotated.ends_at = ends_at;
            if let Some(database) = scope {
                rotated.scope_to(database);
            }
            Ok(Rotation::Rotated(Box::new(rotated)))
        }
        Err(err) => {
            use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
            match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled)
                    if cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    let current = cancelled
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.item())
                        .map(|item| decode::<Session>(item.clone()))
                        .transpose()?
                        .map(Box::new);
                    Ok(Rotation::Lost(current))
                }
                other => Err(Error::dependency("dynamodb TransactWriteItems", other)),
            }
        }
    }
}

/// Whether `hash` is a refresh token this session rotated out at any time in its life. One round trip, none
/// when the session item itself names it.
pub async fn had_refresh_hash(store: &Store, session: &Session, hash: &str, now: UnixTime) -> Result<bool, Error> {
    let named = session.previous_hash.iter().chain(&session.previous_hashes);
    if named.into_iter().any(|h| secret::ct_eq(h, hash)) {
        return Ok(true);
    }
    #[derive(Deserialize)]
    struct Previous {
        expires_at: UnixTime,
    }
    let item: Option<Previous> = store
        .get(&session_pk(&session.id), &format!("{PREVIOUS_SK_PREFIX}{hash}"))
        .await?;
    Ok(item.is_some_and(|p| p.expires_at > now))
}

/// The owner's sessions that still count, newest first. Reads GSI1, filtering revoked, expired (TTL deletes
/// late) and pre-epoch sessions; for display only, nothing decides on security from it. One round trip per
/// page of results.
pub async fn list_active(store: &Store, user: &User, now: UnixTime) -> Result<Vec<Session>, Error> {
    store
        .query_gsi1(
            format!("USER#{}#SESSIONS", user.id),
            "expires_at > :now AND attribute_not_exists(revoked_at) AND epoch >= :epoch",
            vec![(":now", n(now)), (":epoch", n(user.session_epoch))],
            &[],
        )
        .await
}

/// Where an earlier session came from and how it ended: what the new-device notice compares, and nothing else
/// (an owner may hold many sessions, and their hashes and scopes would only weigh down the read).
#[derive(Debug, Deserialize)]
pub struct Seen {
    /// Session id.
    pub id: String,
    /// The owner's session epoch when it started.
    pub epoch: i64,
    /// Client IP at sign-in.
    #[serde(default)]
    pub ip: Option<String>,
    /// User-Agent at sign-in.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// When it was revoked, if it was.
    #[serde(default)]
    pub revoked_at: Option<UnixTime>,
    /// Why it was revoked.
    #[serde(default)]
    pub revoked_reason: Option<String>,
}

/// The owner's sessions whose tokens have not expired, revoked ones included, newest first: the devices and
/// networks the account has used lately, as [`Seen`]. One round trip per page of results.
pub async fn recent(store: &Store, user_id: &str, now: UnixTime) -> Result<Vec<Seen>, Error> {
    store
        .query_gsi1(
            format!("USER#{user_id}#SESSIONS"),
            "expires_at > :now",
            vec![(":now", n(now))],
            &["id", "epoch", "ip", "user_agent", "revoked_at", "revoked_reason"],
        )
        .await
}

/// Who may revoke a session.
pub enum RevokeProof<'a> {
    /// The holder of one of its refresh tokens (current or rotated out).
    RefreshHash(&'a str),
    /// Its owner, authenticated by other means.
    Owner(&'a str),
}

/// Revokes a session. Idempotent: the first revocation time is kept, and a failed proof is not an error
/// (`Ok(false)`), so that logout never reveals whether a session exists.
pub async fn revoke(store: &Store, id: &str, proof: RevokeProof<'_>, now: UnixTime) -> Result<bool, Error> {
    let request = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(session_key(id)))
        .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
        .expression_attribute_values(":now", n(now));
    let request = match proof {
        RevokeProof::RefreshHash(hash) => request
            .condition_expression(
                "attribute_exists(pk) AND (secret_hash = :hash OR previous_hash = :hash OR \
                 contains(previous_hashes, :hash))",
            )
            .expression_attribute_values(":hash", s(hash)),
        RevokeProof::Owner(user_id) => request
            .condition_expression("attribute_exists(pk) AND user_id = :user")
            .expression_attribute_values(":user", s(user_id)),
    };
    conditional(request.send().await, "dynamodb UpdateItem")
}

/// Why a session ended, kept on it: a device signed out by its own logout stays known to the new-device check, one
/// ended for any other reason does not.
pub const ENDED_BY_LOGOUT: &str = "logout";

/// A transaction item that revokes live session `id` of `owner`, recording `reason`: it fails when the session is
/// not the owner's, is gone, or was revoked already, so a revocation is recorded once.
pub(crate) fn revoke_item(
    store: &Store,
    id: &str,
    owner: &str,
    reason: &str,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(session_key(id)))
        .update_expression("SET revoked_at = :now, revoked_reason = :reason")
        .condition_expression("attribute_exists(pk) AND user_id = :user AND attribute_not_exists(revoked_at)")
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":reason", s(reason))
        .expression_attribute_values(":user", s(owner));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// Records on an ended session of `owner` that it ended for `reason` after all (the owner revoked a session its
/// holder had logged out of): its device is no longer trusted. One round trip.
pub async fn mark_revoked_reason(store: &Store, id: &str, owner: &str, reason: &str) -> Result<(), Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(session_key(id)))
        .update_expression("SET revoked_reason = :reason")
        .condition_expression("attribute_exists(revoked_at) AND user_id = :user")
        .expression_attribute_values(":reason", s(reason))
        .expression_attribute_values(":user", s(owner))
        .send()
        .await;
    conditional(result, "dynamodb UpdateItem").map(|_| ())
}

/// Logs out the session whose current refresh token, or the one rotated out last when that was at or after
/// `grace_since` (a tab that lost a race), hashes to `hash`, and returns the session as it was when this call is what
/// ended it: `None` when the proof fails (an older token is a replay, for the caller to judge) or it had ended
/// already. One round trip.
pub async fn revoke_by_refresh(
    store: &Store,
    id: &str,
    hash: &str,
    grace_since: UnixTime,
    now: UnixTime,
) -> Result<Option<Session>, Error> {
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(session_key(id)))
        .update_expression("SET revoked_at = :now, revoked_reason = :reason")
        .condition_expression(
            "attribute_exists(pk) AND attribute_not_exists(revoked_at) AND (secret_hash = :hash OR \
             (previous_hash = :hash AND rotated_at >= :since))",
        )
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":since", n(grace_since))
        .expression_attribute_values(":reason", s(ENDED_BY_LOGOUT))
        .expression_attribute_values(":hash", s(hash))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await;
    match result {
        Ok(output) => output.attributes.map(super::decode::<Session>).transpose(),
        Err(err) if super::is_condition_failure(&err) => Ok(None),
        Err(err) => Err(Error::dependency("dynamodb UpdateItem", err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;

    fn user() -> User {
        User::new(
            crate::store::users::new_user_id(),
            &Email::parse("a@example.com").unwrap(),
            None,
            None,
            Some("h".into()),
            0,
        )
    }

    fn lifetime(refresh_ttl: i64) -> Lifetime {
        Lifetime {
            refresh_ttl,
            max: 1_000,
        }
    }

    #[test]
    fn a_session_never_outlives_its_absolute_end() {
        let (session, _) = Session::start(&user(), &["pwd"], &ClientInfo::default(), lifetime(600), 0);
        assert_eq!((session.expires_at, session.ends_at), (600, 1_000));
        assert_eq!(lifetime(600).refresh_expiry(session.ends_at, 900), 1_000);
        assert_eq!(lifetime(50).refresh_expiry(session.ends_at, 900), 950);
        let (short, _) = Session::start(&user(), &["pwd"], &ClientInfo::default(), lifetime(5_000), 0);
        assert_eq!(short.expires_at, 1_000);
    }

    #[test]
    fn a_new_session_is_active_until_it_expires() {
        let user = user();
        let (session, refresh) = Session::start(&user, &["pwd"], &ClientInfo::default(), lifetime(100), 1_000);
        assert_eq!(session.secret_hash, refresh.hash());
        assert_eq!(session.check_active(&user, 1_099), Ok(()));
        assert_eq!(session.check_active(&user, 1_100), Err(Inactive::Expired));
    }

    #[test]
    fn an_epoch_bump_revokes_older_sessions() {
        let mut user = user();
        let (session, _) = Session::start(&user, &["pwd"], &ClientInfo::default(), lifetime(100), 0);
        user.session_epoch += 1;
        assert_eq!(session.check_active(&user, 1), Err(Inactive::Revoked));
    }

    #[test]
    fn revoked_and_foreign_sessions_are_inactive() {
        let user = user();
        let (mut session, _) = Session::start(&user, &["pwd"], &ClientInfo::default(), lifetime(100), 0);
        session.user_id = "someone-else".into();
        assert_eq!(session.check_active(&user, 1), Err(Inactive::Revoked));
        session.user_id = user.id.clone();
        session.revoked_at = Some(1);
        assert_eq!(session.check_active(&user, 2), Err(Inactive::Revoked));
    }
}
