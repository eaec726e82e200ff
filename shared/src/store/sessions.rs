//! Sessions (`SESSION#<id>` / `SESSION`): what a refresh token belongs to.

use aws_sdk_dynamodb::types::{Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, conditional, decode, encode, is_condition_failure, key, n, s, Store};
use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::store::users::User;
use crate::tokens::{new_session_id, RefreshToken};
use crate::Error;

/// Rotated-out refresh-token hashes kept per session, to recognise a replayed token (reuse detection).
const KEPT_PREVIOUS_HASHES: usize = 8;

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
    /// Hashes of rotated-out refresh tokens, newest first.
    #[serde(default)]
    pub previous_hashes: Vec<String>,
    /// When the current refresh token was issued.
    pub rotated_at: UnixTime,
    /// The user's session epoch when this session started (see [`User::session_epoch`]).
    pub epoch: i64,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Updated on every refresh.
    pub last_seen_at: UnixTime,
    /// The refresh token's expiry; also the TTL attribute.
    pub expires_at: UnixTime,
    /// Set when the session is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixTime>,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// Client IP at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// User-Agent at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
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
        refresh_ttl: i64,
        now: UnixTime,
    ) -> (Self, RefreshToken) {
        let id = new_session_id();
        let refresh = RefreshToken::generate(&id);
        let session = Self {
            pk: session_pk(&id),
            sk: SESSION_SK.to_owned(),
            user_id: user.id.clone(),
            secret_hash: refresh.hash(),
            previous_hashes: Vec::new(),
            rotated_at: now,
            epoch: user.session_epoch,
            created_at: now,
            last_seen_at: now,
            expires_at: now + refresh_ttl,
            revoked_at: None,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            gsi1pk: format!("USER#{}#SESSIONS", user.id),
            gsi1sk: format!("{now:012}#{id}"),
            id,
        };
        (session, refresh)
    }

    /// Whether the session still authenticates its owner, given the owner's current epoch.
    pub fn check_active(&self, user: &User, now: UnixTime) -> Result<(), Inactive> {
        if self.revoked_at.is_some() || self.epoch < user.session_epoch || self.user_id != user.id {
            Err(Inactive::Revoked)
        } else if self.expires_at <= now {
            Err(Inactive::Expired)
        } else {
            Ok(())
        }
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

/// Replaces the refresh-token hash, only if it is still `presented_hash` and the session is not revoked.
pub async fn rotate(
    store: &Store,
    session: &Session,
    new_hash: &str,
    refresh_ttl: i64,
    now: UnixTime,
) -> Result<Rotation, Error> {
    let mut previous = Vec::with_capacity(KEPT_PREVIOUS_HASHES);
    previous.push(s(&session.secret_hash));
    previous.extend(session.previous_hashes.iter().take(KEPT_PREVIOUS_HASHES - 1).map(s));
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(session_key(&session.id)))
        .update_expression(
            "SET secret_hash = :new, previous_hashes = :previous, rotated_at = :now, last_seen_at = :now, \
             expires_at = :expires",
        )
        .condition_expression("secret_hash = :presented AND attribute_not_exists(revoked_at)")
        .expression_attribute_values(":new", s(new_hash))
        .expression_attribute_values(":presented", s(&session.secret_hash))
        .expression_attribute_values(":previous", aws_sdk_dynamodb::types::AttributeValue::L(previous))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":expires", n(now + refresh_ttl))
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(output) => {
            let item = output.attributes.ok_or_else(|| {
                Error::dependency("dynamodb UpdateItem", std::io::Error::other("no attributes returned"))
            })?;
            Ok(Rotation::Rotated(Box::new(decode(item)?)))
        }
        Err(err) if is_condition_failure(&err) => {
            let current = match err.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                    e.item.map(decode::<Session>).transpose()?.map(Box::new)
                }
                _ => None,
            };
            Ok(Rotation::Lost(current))
        }
        Err(err) => Err(Error::dependency("dynamodb UpdateItem", err)),
    }
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
            .condition_expression("attribute_exists(pk) AND (secret_hash = :hash OR contains(previous_hashes, :hash))")
            .expression_attribute_values(":hash", s(hash)),
        RevokeProof::Owner(user_id) => request
            .condition_expression("attribute_exists(pk) AND user_id = :user")
            .expression_attribute_values(":user", s(user_id)),
    };
    conditional(request.send().await, "dynamodb UpdateItem")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Email;

    fn user() -> User {
        User::new(&Email::parse("a@example.com").unwrap(), None, None, "h".into(), 0)
    }

    #[test]
    fn a_new_session_is_active_until_it_expires() {
        let user = user();
        let (session, refresh) = Session::start(&user, &["pwd"], &ClientInfo::default(), 100, 1_000);
        assert_eq!(session.secret_hash, refresh.hash());
        assert_eq!(session.check_active(&user, 1_099), Ok(()));
        assert_eq!(session.check_active(&user, 1_100), Err(Inactive::Expired));
    }

    #[test]
    fn an_epoch_bump_revokes_older_sessions() {
        let mut user = user();
        let (session, _) = Session::start(&user, &["pwd"], &ClientInfo::default(), 100, 0);
        user.session_epoch += 1;
        assert_eq!(session.check_active(&user, 1), Err(Inactive::Revoked));
    }

    #[test]
    fn revoked_and_foreign_sessions_are_inactive() {
        let user = user();
        let (mut session, _) = Session::start(&user, &["pwd"], &ClientInfo::default(), 100, 0);
        session.user_id = "someone-else".into();
        assert_eq!(session.check_active(&user, 1), Err(Inactive::Revoked));
        session.user_id = user.id.clone();
        session.revoked_at = Some(1);
        assert_eq!(session.check_active(&user, 2), Err(Inactive::Revoked));
    }
}
