//! The security-event history an account's owner reads (`GET /v1/auth/events`): what happened to the account, when,
//! from where and by whom, newest first. Events never hold a secret (see [`crate::store::events`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

use crate::auth::Principal;
use crate::clock::{rfc3339, UnixTime};
use crate::store::events::{self, Event};
use crate::store::users::User;
use crate::{Error, State};

/// `event` as done by `caller`: its account is the actor, and the session or the PAT it acted through is named, so
/// a stolen credential's actions can be told apart from the owner's.
pub(crate) fn by(event: Event, caller: &Principal) -> Event {
    let event = event.by(&caller.user.id);
    match (caller.session_id(), caller.token_id()) {
        (Some(session), _) => event.in_session(session),
        (None, Some(token)) => event.with("via_token", token),
        (None, None) => event,
    }
}

/// One event as the API shows it.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// Event id.
    pub id: String,
    /// What happened (`signed_in`, `password_changed`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339.
    pub at: String,
    /// The caller's address.
    pub ip: Option<String>,
    /// The caller's User-Agent.
    pub user_agent: Option<String>,
    /// A readable label of that User-Agent.
    pub device: String,
    /// The session the request came from, or the one the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Who did it, when not the account itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// The account it happened to.
    pub target_id: String,
    /// The account's tenant.
    pub tenant_id: Option<String>,
    /// What the event is about beyond its parties.
    pub details: BTreeMap<String, String>,
}

impl From<Event> for EventView {
    fn from(event: Event) -> Self {
        Self {
            device: crate::session::device_label(event.user_agent.as_deref()),
            id: event.id,
            kind: event.kind,
            at: rfc3339(event.at),
            ip: event.ip,
            user_agent: event.user_agent,
            session_id: event.session_id,
            actor_id: event.actor_id,
            target_id: event.target_id,
            tenant_id: event.tenant_id,
            details: event.details,
        }
    }
}

impl EventView {
    /// The event as the account it happened to sees it: when someone else acted (an admin), where they acted from
    /// (address, User-Agent, session, token) is theirs, and is shown only in the tenant feed.
    fn as_owner_sees_it(mut event: Event) -> Self {
        if event.actor_id.as_ref().is_some_and(|actor| *actor != event.target_id) {
            event.ip = None;
            event.user_agent = None;
            event.session_id = None;
            event.details.remove("via_token");
        }
        Self::from(event)
    }
}

/// One page of events.
#[derive(Debug, Serialize)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The caller's own events, newest first, a page at a time; an event past its retention is gone even before the
/// cleanup deletes it. A cursor names the account it was made for: another account's (or a forged one) is 422. One
/// round trip after authentication.
pub async fn list_own(
    state: &State,
    user: &User,
    limit: i32,
    cursor: Option<&str>,
    now: UnixTime,
) -> Result<EventPage, Error> {
    let after = cursor.map(|c| decode_cursor(&user.id, c)).transpose()?;
    let (found, next) = events::page_of(&state.store, &user.id, limit, after.as_deref()).await?;
    Ok(EventPage {
        events: found
            .into_iter()
            .filter(|event| event.expires_at > now)
            .map(EventView::as_owner_sees_it)
            .collect(),
        next_cursor: next.map(|sk| encode_cursor(&user.id, &sk)),
    })
}

/// What the tenant feed may be narrowed to.
#[derive(Debug, Default)]
pub struct FeedQuery {
    /// An account of the caller's tenant (a UUID; anything else is 422).
    pub account_id: Option<String>,
    /// A snake_case event type.
    pub kind: Option<String>,
}

/// The caller's tenant's events, newest first, a page at a time, narrowed by `query`. A cursor names the tenant it
/// was made for. One round trip after authentication (a GSI query: an event is written once, so the index's lag
/// only delays the newest).
pub async fn list_tenant(
    state: &State,
    caller: &User,
    limit: i32,
    cursor: Option<&str>,
    query: &FeedQuery,
    now: UnixTime,
) -> Result<EventPage, Error> {
    let tenant = caller.tenant_id.as_deref().ok_or(Error::NotFound)?;
    if query
        .account_id
        .as_deref()
        .is_some_and(|id| !crate::store::users::is_id(id))
    {
        return Err(Error::InvalidField("account_id must be an account id.".to_owned()));
    }
    if query
        .kind
        .as_deref()
        .is_some_and(|kind| events::Kind::parse(kind).is_none())
    {
        return Err(Error::InvalidField("type must be one of the event types.".to_owned()));
    }
    let after = cursor.map(|c| decode_tenant_cursor(tenant, c)).transpose()?;
    let filter = events::FeedFilter {
        account_id: query.account_id.as_deref(),
        kind: query.kind.as_deref(),
    };
    let (found, next) = events::tenant_page(
        &state.store,
        tenant,
        limit,
        after.as_ref().map(|(target, sk)| (target.as_str(), sk.as_str())),
        filter,
    )
    .await?;
    Ok(EventPage {
        events: found
            .into_iter()
            .filter(|event| event.expires_at > now)
            .map(EventView::from)
            .collect(),
        next_cursor: next.map(|(target, sk)| encode_cursor(tenant, &format!("{target}\n{sk}"))),
    })
}

/// The `(account, sort key)` a tenant cursor continues after; 422 when malformed or of another tenant.
fn decode_tenant_cursor(tenant: &str, cursor: &str) -> Result<(String, String), Error> {
    let invalid = || Error::InvalidField("cursor is not a cursor this listing gave.".to_owned());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (Some(who), Some(target), Some(sort)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if who != tenant || !crate::store::users::is_id(target) || !is_sort_key(sort) {
        return Err(invalid());
    }
    Ok((target.to_owned(), sort.to_owned()))
}

/// `<12 digits>#<event id>`.
fn is_sort_key(sort: &str) -> bool {
    sort.split_once('#').is_some_and(|(at, id)| {
        at.len() == 12
            && at.bytes().all(|b| b.is_ascii_digit())
            && (1..=32).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// base64url of `<owner id>\n<sort key>`.
fn encode_cursor(owner: &str, sort: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{owner}\n{sort}"))
}

/// The sort key a cursor continues after; 422 for a malformed cursor or one of another account.
fn decode_cursor(owner: &str, cursor: &str) -> Result<String, Error> {
    let invalid = || Error::InvalidField("cursor is not a cursor this listing gave.".to_owned());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (who, sort) = text.split_once('\n').ok_or_else(invalid)?;
    if who != owner || !is_sort_key(sort) {
        return Err(invalid());
    }
    Ok(sort.to_owned())
}
