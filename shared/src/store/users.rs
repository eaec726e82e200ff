//! Users (`USER#<id>` / `PROFILE`) and the email marker that makes an address unique (`EMAIL#<email>` / `USER`).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{built, encode, key, n, s, Store};
use crate::clock::{rfc3339, UnixTime};
use crate::email::Email;
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
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the address was proven by a code.
    pub email_verified: bool,
    /// Unix seconds.
    pub created_at: UnixTime,
    /// Unix seconds.
    pub updated_at: UnixTime,
    /// Sessions started under an older epoch are revoked: bumping it ends every session in one write.
    pub session_epoch: i64,
}

/// The public view of a user, as `/v1/auth/me` and token responses show it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the address is verified.
    pub email_verified: bool,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct EmailMarker {
    pk: String,
    sk: String,
    user_id: String,
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

impl User {
    /// A new, unverified user.
    pub fn new(
        email: &Email,
        name: Option<String>,
        tenant_name: Option<String>,
        password_hash: String,
        now: UnixTime,
    ) -> Self {
        let id = new_user_id();
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
        }
    }

    /// The public view.
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            email_verified: self.email_verified,
            created_at: rfc3339(self.created_at),
        }
    }
}

fn new_user_id() -> String {
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

/// The key of an address's marker.
pub(crate) fn marker_key(email: &Email) -> super::Item {
    key(&email_pk(email), MARKER_SK)
}

/// The user id a marker item points to.
pub(crate) fn marker_user_id(item: super::Item) -> Result<String, Error> {
    Ok(super::decode::<EmailMarker>(item)?.user_id)
}

/// Reads the account that owns an address: the marker, then the user (two round trips).
pub async fn find_by_email(store: &Store, email: &Email) -> Result<Option<User>, Error> {
    match id_for_email(store, email).await? {
        Some(id) => get(store, &id).await,
        None => Ok(None),
    }
}

/// Transaction items that create a user and claim its address; the claim fails if the address is taken.
pub(crate) fn create_items(store: &Store, user: &User) -> Result<Vec<TransactWriteItem>, Error> {
    let email = Email::parse(&user.email)?;
    let marker = EmailMarker {
        pk: email_pk(&email),
        sk: MARKER_SK.to_owned(),
        user_id: user.id.clone(),
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

/// A transaction item that replaces the password and name of a still-unverified user.
pub(crate) fn replace_pending_item(store: &Store, user: &User, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let mut update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .condition_expression("attribute_exists(pk) AND email_verified = :false")
        .expression_attribute_values(":false", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
        .expression_attribute_values(":hash", s(&user.password_hash))
        .expression_attribute_values(":now", n(now));
    let mut set = "SET password_hash = :hash, updated_at = :now".to_owned();
    let mut remove = Vec::new();
    for (field, value) in [("name", &user.name), ("tenant_name", &user.tenant_name)] {
        match value {
            // `name` is a DynamoDB reserved word, so every field goes through a placeholder.
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
    Ok(TransactWriteItem::builder()
        .update(built(update.update_expression(expression).build())?)
        .build())
}

/// A transaction item that marks a user verified.
pub(crate) fn mark_verified_item(store: &Store, user_id: &str, now: UnixTime) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(user_id)))
        .update_expression("SET email_verified = :true, updated_at = :now")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
        .expression_attribute_values(":now", n(now));
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// A transaction item that sets a new password and moves to a new session epoch, which revokes every session
/// started before it. The condition on the old epoch makes two concurrent changes serialise.
pub(crate) fn set_password_item(
    store: &Store,
    user: &User,
    password_hash: &str,
    new_epoch: i64,
    verify_email: bool,
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let update = Update::builder()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression(
            "SET password_hash = :hash, session_epoch = :new_epoch, updated_at = :now, \
             email_verified = :verified",
        )
        .condition_expression("session_epoch = :old_epoch")
        .expression_attribute_values(":hash", s(password_hash))
        .expression_attribute_values(":new_epoch", n(new_epoch))
        .expression_attribute_values(":old_epoch", n(user.session_epoch))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(
            ":verified",
            aws_sdk_dynamodb::types::AttributeValue::Bool(verify_email || user.email_verified),
        );
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
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
    Ok(TransactWriteItem::builder().update(built(update.build())?).build())
}

/// Stores a re-hash made with current parameters; best effort, the login already succeeded.
pub async fn upgrade_password_hash(store: &Store, user: &User, password_hash: &str) -> Result<(), Error> {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(user_key(&user.id)))
        .update_expression("SET password_hash = :new")
        .condition_expression("password_hash = :old")
        .expression_attribute_values(":new", s(password_hash))
        .expression_attribute_values(":old", s(&user.password_hash))
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
        let user = User::new(&email, Some("A".into()), None, "$argon2id$x".into(), 10);
        let item = encode(&user).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), &format!("USER#{}", user.id));
        assert!(!item.contains_key("tenant_name"));
        let back: User = super::super::decode(item).unwrap();
        assert_eq!(back.email, "a@example.com");
        assert_eq!(back.view().created_at, "1970-01-01T00:00:10Z");
    }
}
