//! Session flows: issuing token responses, refresh with rotation and reuse detection, logout.

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Serialize;

use crate::clock::UnixTime;
use crate::federation::directory::{self, Recheck};
use crate::http::ClientInfo;
use crate::store::databases::{self, Database};
use crate::store::events::{self, Event, Kind};
use crate::store::sessions::list_active;
use crate::store::sessions::{self, Inactive, Lifetime, Rotation, Session};
use crate::store::users::{self, User, UserView};
use crate::store::{decode, Store};
use crate::tenancy::roles;
use crate::tokens::{self, AccessClaims, RefreshToken};
use crate::{rate_limit, secret, Error, State};

/// The body of every successful login, verification and refresh (DESIGN §4).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, `<session_id>.<secret>`.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The session both tokens belong to.
    pub session_id: String,
    /// The user.
    pub user: UserView,
    /// Set at a password login when the optional breach check finds the password in a known breach: it still
    /// signs in, and the application should ask for a new one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub password_breached: bool,
}

/// Signs an access token for `session` and assembles the token response. The claims speak for the account as it
/// is now: its tenant, its current role (and the scopes the role table gives it), its kind; and for the session:
/// its database and frontend user.
pub async fn token_response(
    state: &State,
    user: &User,
    session: &Session,
    refresh: &RefreshToken,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let keys = state.keys.signing(now).await?;
    let ttl = state.config.access_token_ttl;
    let claims = AccessClaims {
        sid: session.id.clone(),
        amr: session.amr.clone(),
        auth_time: session.created_at,
        db: session.db.clone(),
        ns: session.ns.clone(),
        fuid: session.fuid.clone(),
        ..account_claims(state, user, now)
    };
    Ok(TokenResponse {
        access_token: tokens::sign_access_token(&keys, &claims)?,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh.expose(),
        refresh_expires_in: session.expires_at - now,
        session_id: session.id.clone(),
        user: user.view(),
        password_breached: false,
    })
}

/// The claims every access token of `user` carries, issued now: who it is for and what its account is now (its
/// tenant, its current role and the scopes the role table gives it, its kind). The caller adds how it signed in.
pub(crate) fn account_claims(state: &State, user: &User, now: UnixTime) -> AccessClaims {
    AccessClaims {
        iss: state.config.issuer.clone(),
        sub: user.id.clone(),
        aud: state.config.audience.clone(),
        exp: now + state.config.access_token_ttl,
        iat: now,
        jti: secret::random_b64(16),
        scope: roles::scope_claim(&state.config, user.role),
        tenant: user.tenant_id.clone(),
        role: user.role.map(|role| role.as_str().to_owned()),
        acct: Some(user.kind.as_str().to_owned()),
        ..AccessClaims::default()
    }
}

/// A root token: an access JWT with no session and no refresh token.
#[derive(Debug, Serialize)]
pub struct RootToken {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// The account's sessions whose tokens have not expired, for the new-device notice: read beside the sign-in's own
/// write, so the notice costs no round-trip time. `None` when notices are off, the account has no mailbox, or the
/// read failed (the sign-in stands whatever happens here). One round trip.
pub(crate) async fn recent_for_notice(state: &State, user: &User, now: UnixTime) -> Option<Vec<sessions::Seen>> {
    if !state.config.notify_new_device || user.email.is_empty() {
        return None;
    }
    match sessions::recent(&state.store, &user.id, now).await {
        Ok(recent) => Some(recent),
        Err(err) => {
            tracing::warn!(error = ?err, "reading recent sessions for the new-device notice failed");
            None
        }
    }
}

/// The token response of a session a sign-in just opened ([`open_items`]), after mailing the owner when none of
/// `recent` (read by [`recent_for_notice`] beside the write) had the session's device label and network (the same
/// /24 of IPv4, /48 of IPv6). No DynamoDB call; one SQS call for a new device.
pub(crate) async fn opened(
    state: &State,
    user: &User,
    session: &Session,
    refresh: &RefreshToken,
    recent: Option<Vec<sessions::Seen>>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    if let Some(recent) = recent {
        notice_new_device(state, user, session, &recent).await;
    }
    token_response(state, user, session, refresh, now).await
}

async fn notice_new_device(state: &State, user: &User, session: &Session, recent: &[sessions::Seen]) {
    let device = device_label(session.user_agent.as_deref());
    let network = session.ip.as_deref().and_then(network_of);
    // A device counts as known only while its session stands, or after its own logout: one the owner signed out,
    // or that a reuse, a password reset or "sign out everywhere" ended, is announced again when it comes back.
    let trusted = |other: &sessions::Seen| {
        other.epoch >= user.session_epoch
            && (other.revoked_at.is_none() || other.revoked_reason.as_deref() == Some(sessions::ENDED_BY_LOGOUT))
    };
    let seen = recent.iter().any(|other| {
        other.id != session.id
            && trusted(other)
            && device_label(other.user_agent.as_deref()) == device
            && other.ip.as_deref().and_then(network_of) == network
    });
    if seen {
        return;
    }
    let mail = crate::mail::Mail::NewDeviceSignIn {
        device: &device,
        ip: session.ip.as_deref().unwrap_or("an unknown address"),
        method: sign_in_method(&session.amr),
    };
    crate::account::notify_owner(state, user, mail).await;
}

/// The network an address belongs to for the new-device notice: its /24 (IPv4) or /48 (IPv6).
fn network_of(ip: &str) -> Option<String> {
    let ip = match ip.parse::<std::net::IpAddr>().ok()? {
        // An IPv4 client seen through a dual-stack socket is its IPv4 address.
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, ..] = v6.segments();
            Some(format!("{a:x}:{b:x}:{c:x}::/48"))
        }
    }
}

/// The transaction item that records a root sign-in (a token with no session): its `signed_in` event. Counts the
/// sign-in.
pub(crate) fn root_sign_in_item(
    state: &State,
    user: &User,
    amr: &[&str],
    now: UnixTime,
) -> Result<TransactWriteItem, Error> {
    let method = sign_in_method(amr);
    crate::telemetry::sign_in(method, true);
    let event = Event::new(Kind::SignedIn, user, now, state.config.event_retention)
        .with("method", method)
        .with("amr", amr.join(" "))
        .with("token", "root");
    events::put_item(&state.store, &event)
}

/// Signs a root token for `user` (see [`crate::account::login_root`]): no session, the account's session epoch
/// as its stamp, the root role's scopes, `amr` as the sign-in proved it. No DynamoDB call.
pub async fn root_token(state: &State, user: &User, amr: &[&str], now: UnixTime) -> Result<RootToken, Error> {
    let keys = state.keys.signing(now).await?;
    let ttl = state.config.access_token_ttl;
    let claims = AccessClaims {
        amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        auth_time: now,
        epoch: Some(user.session_epoch),
        ..account_claims(state, user, now)
    };
    Ok(RootToken {
        access_token: tokens::sign_access_token(&keys, &claims)?,
        token_type: "Bearer",
        expires_in: ttl,
    })
}

/// Re-scopes the caller's own session to `database` (a database of its tenant, else 404) or to none, and answers
/// with a token response for the same session, its refresh token rotated. A password is not needed: the session
/// already proved who the caller is, however it signed in; a directory account's directory is re-asked as at a
/// refresh ([`directory::recheck`]). Two round trips after authentication: the database (none when clearing), the
/// rotation (one transaction); a directory re-check adds its own.
pub async fn switch_database(
    state: &State,
    user: &User,
    session: &Session,
    database: Option<&crate::tenancy::databases::Selector>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let scoped = match database {
        Some(selector) => Some(crate::tenancy::databases::in_tenant(
            selector.lookup(&state.store).await?,
            user.tenant_id.as_deref(),
        )?),
        None => None,
    };
    // It mints tokens as a refresh does, so it asks a directory account's directory as a refresh does.
    let checked = match directory::recheck(state, user, session, now).await? {
        Recheck::Confirmed => Some(now),
        Recheck::NotDue => None,
    };
    let next = RefreshToken::generate(&session.id, &session.user_id);
    let rotation = sessions::rotate_scoped(
        &state.store,
        session,
        &next.hash(),
        Lifetime::from_config(&state.config),
        Some(scoped.as_ref()),
        checked,
        now,
    )
    .await?;
    match rotation {
        Rotation::Rotated(rotated) => token_response(state, user, &rotated, &next, now).await,
        // A refresh rotated the session meanwhile: this request's view of it is stale.
        Rotation::Lost(_) => Err(Error::Conflict("The session changed meanwhile; try again.")),
    }
}

/// The sign-in method a session's `amr` names first, as events and metrics spell it.
pub fn sign_in_method(amr: &[impl AsRef<str>]) -> &'static str {
    match amr.first().map(AsRef::as_ref) {
        Some("pwd") => "password",
        Some("otp") => "email_code",
        Some("email_link") => "magic_link",
        Some("hwk" | "swk") => "passkey",
        Some("google") => "google",
        Some("entra") => "entra",
        Some("ldap") => "ldap",
        Some("invitation") => "invitation",
        _ => "other",
    }
}

/// The transaction items that open `session` for `user`: the session and its `signed_in` event (the method and
/// the full `amr`), so a sign-in and its record are one write. Counts the sign-in.
pub(crate) fn open_items(
    state: &State,
    user: &User,
    session: &Session,
    now: UnixTime,
) -> Result<[TransactWriteItem; 2], Error> {
    let method = sign_in_method(&session.amr);
    crate::telemetry::sign_in(method, true);
    let event = Event::new(Kind::SignedIn, user, now, state.config.event_retention)
        .in_session(&session.id)
        .with("method", method)
        .with("amr", session.amr.join(" "));
    Ok([
        sessions::create_item(&state.store, session)?,
        events::put_item(&state.store, &event)?,
    ])
}

/// Exchanges a refresh token for new tokens, rotating it. Replaying any token the session rotated out revokes the
/// session, except the last one within the grace window right after a rotation, where two tabs may race (409
/// instead). No rotation takes the session past its absolute end.
/// The new access token keeps the session's database and frontend user and re-reads the role; a session whose
/// database was deleted (or whose account was disabled) is revoked (401 `session_revoked`).
/// A directory account's session re-asks its directory at most every fifteen minutes (see
/// [`directory::recheck`]): gone, the account's sessions and tokens end (401 `session_revoked`).
/// The client's per-IP refresh limit is checked first (429). Two round-trip times: the session and its owner (one
/// BatchGetItem: the token names the owner) beside the limit's counter, then the rotation (one transaction). A
/// session scoped to a database reads the database between them (three), and so does a token of the older form
/// (`<session_id>.<secret>`: its owner is read after the session, with the database); one more to look up an older
/// rotated-out token; a directory account's re-check adds its own. The answer's token is always of the new form.
pub async fn refresh(state: &State, raw: &str, client: &ClientInfo, now: UnixTime) -> Result<TokenResponse, Error> {
    const UNKNOWN: Error = Error::InvalidToken("The refresh token is invalid or has expired.");
    let rule = state.config.rate_limits.refresh_rule("refresh");
    let limited = rate_limit::check_client_ip(&state.store, &rule, client, now);
    let presented = match RefreshToken::parse(raw) {
        Ok(presented) => presented,
        Err(err) => {
            limited.await?;
            return Err(err);
        }
    };
    // The per-IP counter runs beside the reads, which change nothing: every write below still waits for its
    // verdict, and a refused request is 429 whatever the reads found.
    let (limit, read) = tokio::join!(limited, session_and_owner(&state.store, &presented));
    limit?;
    let (session, owner) = read?.ok_or(UNKNOWN)?;
    let presented_hash = presented.hash();
    let user = match owner {
        Some(owner) => owner_in_database(&state.store, &session, owner).await?,
        None => user_and_database(&state.store, &session).await?,
    };
    match session.check_active(&user, now) {
        Ok(()) => {}
        Err(Inactive::Revoked) => return Err(Error::SessionRevoked),
        Err(Inactive::Expired) => return Err(UNKNOWN),
    }
    if !secret::ct_eq(&session.secret_hash, &presented_hash) {
        return reused_or_unknown(state, &user, &session, &presented_hash, now).await;
    }
    // Only the holder of the current token makes keygate ask the directory.
    let checked = match directory::recheck(state, &user, &session, now).await? {
        Recheck::Confirmed => Some(now),
        Recheck::NotDue => None,
    };
    let next = RefreshToken::generate(&session.id, &session.user_id);
    match sessions::rotate(
        &state.store,
        &session,
        &next.hash(),
        Lifetime::from_config(&state.config),
        checked,
        now,
    )
    .await?
    {
        Rotation::Rotated(rotated) => token_response(state, &user, &rotated, &next, now).await,
        // A concurrent request won. Judge the presented token against the session as it is now.
        Rotation::Lost(Some(current)) if current.revoked_at.is_none() => {
            reused_or_unknown(state, &user, &current, &presented_hash, now).await
        }
        Rotation::Lost(_) => Err(Error::SessionRevoked),
    }
}

/// The session a refresh token names, with its owner when the token names the owner too (one BatchGetItem), or
/// alone for a token of the older form (one GetItem). A token whose owner is not the session's is not one keygate
/// issued for that session: 401 `invalid_token`, as an unknown session is (`None`). An owner that is gone is 401
/// `session_revoked`.
async fn session_and_owner(store: &Store, presented: &RefreshToken) -> Result<Option<(Session, Option<User>)>, Error> {
    let Some(user_id) = &presented.user_id else {
        return Ok(sessions::get(store, &presented.session_id)
            .await?
            .map(|session| (session, None)));
    };
    let mut found = store
        .batch_get(vec![
            sessions::session_key(&presented.session_id),
            users::user_key(user_id),
        ])
        .await?
        .into_iter();
    let session = found.next().flatten().map(decode::<Session>).transpose()?;
    let user = found.next().flatten().map(decode::<User>).transpose()?;
    match session {
        Some(session) if session.user_id == *user_id => Ok(Some((session, Some(user.ok_or(Error::SessionRevoked)?)))),
        _ => Ok(None),
    }
}

/// The session's owner, read with the session, and a check that the session's database (if any) still exists in
/// the owner's tenant (one more read, only for a session scoped to a database). Missing is 401 `session_revoked`.
async fn owner_in_database(store: &Store, session: &Session, owner: User) -> Result<User, Error> {
    let Some(db) = &session.db else {
        return Ok(owner);
    };
    match databases::get(store, db).await? {
        Some(database) if owner.tenant_id.as_deref() == Some(database.tenant_id.as_str()) => Ok(owner),
        _ => Err(Error::SessionRevoked),
    }
}

/// The session's owner, and a check that the session's database (if any) still exists in the owner's tenant, in
/// one strongly consistent read. Either missing is 401 `session_revoked`.
async fn user_and_database(store: &Store, session: &Session) -> Result<User, Error> {
    let Some(db) = &session.db else {
        return users::get(store, &session.user_id).await?.ok_or(Error::SessionRevoked);
    };
    let mut found = store
        .batch_get(vec![users::user_key(&session.user_id), databases::database_key(db)])
        .await?
        .into_iter();
    let user = found.next().flatten().map(decode::<User>).transpose()?;
    let database = found.next().flatten().map(decode::<Database>).transpose()?;
    match (user, database) {
        (Some(user), Some(database)) if user.tenant_id.as_deref() == Some(database.tenant_id.as_str()) => Ok(user),
        _ => Err(Error::SessionRevoked),
    }
}

/// The presented token is not the session's current one. A rotated-out token is a replay: the last one within the
/// grace window is a racing tab (409), any other a theft signal that revokes the session. Any other secret proves
/// nothing, so it must not let a stranger who knows a session id end that session.
async fn reused_or_unknown(
    state: &State,
    user: &User,
    session: &Session,
    presented_hash: &str,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let just_rotated = session
        .previous_hash
        .as_deref()
        .is_some_and(|h| secret::ct_eq(h, presented_hash));
    if just_rotated && now - session.rotated_at <= state.config.refresh_reuse_grace {
        return Err(Error::RefreshConflict);
    }
    if sessions::had_refresh_hash(&state.store, session, presented_hash, now).await? {
        reuse_detected(state, user, session, now).await?;
        return Err(Error::SessionRevoked);
    }
    Err(Error::InvalidToken("The refresh token is invalid or has expired."))
}

/// A rotated-out refresh token of `session` was presented again, at refresh or at logout: whoever holds it is not
/// the session's current holder, so the session ends, the event is recorded, and the owner is told, once, however
/// many copies of the token are replayed at once.
async fn reuse_detected(state: &State, owner: &User, session: &Session, now: UnixTime) -> Result<(), Error> {
    tracing::warn!(session = %session.id, "refresh token reuse detected; revoking the session");
    crate::telemetry::refresh_reuse();
    let ending = Ending {
        kind: Kind::RefreshReuseDetected,
        reason: "refresh_reuse",
    };
    if end(state, owner_of(owner), &session.id, ending, now).await? == Ended::Now {
        let device = device_label(session.user_agent.as_deref());
        crate::account::notify_owner(state, owner, crate::mail::Mail::RefreshTokenReused { device: &device }).await;
    }
    Ok(())
}

/// Why a session ends, as its event records it.
#[derive(Debug, Clone, Copy)]
struct Ending {
    kind: Kind,
    reason: &'static str,
}

const LOGOUT: Ending = Ending {
    kind: Kind::SessionRevoked,
    reason: sessions::ENDED_BY_LOGOUT,
};

/// What [`end`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// This call ended the session and recorded it.
    Now,
    /// It had ended already (and was recorded then).
    Before,
    /// It is not the owner's, or does not exist.
    NotTheirs,
}

/// Ends live session `session_id` of `owner` (of `tenant`) and records the event, in one transaction. A
/// transaction refused by a concurrent write (DynamoDB's `TransactionConflict`, say with a refresh of the same
/// session) is judged from the session as it is then, and tried once more while it is still live, so a revocation
/// never leaves the session running. A session its holder had logged out of, ended now for another reason, keeps
/// that reason, so its device is no longer trusted ([`notice_new_device`]).
/// One round trip; a read (and the retry, or the reason) when the transaction is refused.
async fn end(
    state: &State,
    (owner, tenant): (&str, Option<&str>),
    session_id: &str,
    ending: Ending,
    now: UnixTime,
) -> Result<Ended, Error> {
    let event = Event::about(ending.kind, owner, tenant, now, state.config.event_retention)
        .in_session(session_id)
        .with("reason", ending.reason);
    for _ in 0..2 {
        let items = vec![
            sessions::revoke_item(&state.store, session_id, owner, ending.reason, now)?,
            events::put_item(&state.store, &event)?,
        ];
        if state.store.transact_racing(items).await? {
            return Ok(Ended::Now);
        }
        match sessions::get(&state.store, session_id).await? {
            Some(session) if session.user_id != owner => return Ok(Ended::NotTheirs),
            Some(session) if session.revoked_at.is_some() => {
                let by_logout = session.revoked_reason.as_deref() == Some(sessions::ENDED_BY_LOGOUT);
                if by_logout && ending.reason != sessions::ENDED_BY_LOGOUT {
                    sessions::mark_revoked_reason(&state.store, session_id, owner, ending.reason).await?;
                }
                return Ok(Ended::Before);
            }
            Some(_) => continue,
            None => return Ok(Ended::NotTheirs),
        }
    }
    Err(Error::Conflict("The session changed meanwhile; try again."))
}

/// The account a session-ending call names: its id and tenant.
fn owner_of(user: &User) -> (&str, Option<&str>) {
    (&user.id, user.tenant_id.as_deref())
}

/// Logs out the session a refresh token belongs to. Idempotent, and silent about unknown sessions. The current
/// token, or the last rotated out within the grace window (a racing tab), logs out; an older rotated-out token is
/// a replay and ends the session as at a refresh ([`reuse_detected`]). One round trip, and one more to record the
/// logout when it ended a live session (the token names no account: the revocation's answer does); an older token
/// reads the session, its history item and the owner, then ends it as [`end`] does.
pub async fn logout_with_refresh_token(state: &State, raw: &str, now: UnixTime) -> Result<(), Error> {
    let presented = RefreshToken::parse(raw)?;
    let hash = presented.hash();
    let grace_since = now - state.config.refresh_reuse_grace;
    let store = &state.store;
    if let Some(ended) = sessions::revoke_by_refresh(store, &presented.session_id, &hash, grace_since, now).await? {
        let event = logout_event(state, &ended.user_id, ended.tenant.as_deref(), &ended.id, now);
        return events::put(store, &event).await;
    }
    let Some(session) = sessions::get(store, &presented.session_id).await? else {
        return Ok(());
    };
    // As at a refresh: only a session that still counts can be replayed into.
    let Some(owner) = users::get(store, &session.user_id).await? else {
        return Ok(());
    };
    if session.check_active(&owner, now).is_err() {
        return Ok(());
    }
    if sessions::had_refresh_hash(store, &session, &hash, now).await? {
        reuse_detected(state, &owner, &session, now).await?;
    }
    Ok(())
}

/// The `session_revoked` event of a logout, for an account known by its id and tenant.
fn logout_event(state: &State, user_id: &str, tenant: Option<&str>, session_id: &str, now: UnixTime) -> Event {
    Event::about(LOGOUT.kind, user_id, tenant, now, state.config.event_retention)
        .in_session(session_id)
        .with("reason", LOGOUT.reason)
}

/// Logs out the session of a verified access token. Idempotent. One round trip (see [`end`]).
pub async fn logout_session(state: &State, claims: &AccessClaims, now: UnixTime) -> Result<(), Error> {
    // Not the bearer's, or gone: nothing to end (a forged `sid` under a valid signature cannot happen).
    end(state, (&claims.sub, claims.tenant.as_deref()), &claims.sid, LOGOUT, now).await?;
    Ok(())
}

/// One session as its owner sees it: no token material.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; updated on refresh.
    pub last_seen_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Client IP at login.
    pub ip: Option<String>,
    /// The raw User-Agent.
    pub user_agent: Option<String>,
    /// A short label such as "Firefox on macOS".
    pub device: String,
    /// How the user logged in.
    pub amr: Vec<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// A short human label for a User-Agent, such as "Firefox on macOS".
pub fn device_label(user_agent: Option<&str>) -> String {
    let Some(parsed) = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua)) else {
        return "Unknown device".to_owned();
    };
    let known = |value: &str| !value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN;
    match (known(parsed.name), known(parsed.os)) {
        (true, true) => format!("{} on {}", parsed.name, os_label(parsed.os)),
        (true, false) => parsed.name.to_owned(),
        (false, true) => format!("Unknown browser on {}", os_label(parsed.os)),
        (false, false) => "Unknown device".to_owned(),
    }
}

/// woothee's OS names, as people say them.
fn os_label(os: &str) -> &str {
    match os {
        "Mac OSX" => "macOS",
        "iPhone" | "iPad" | "iPod" => "iOS",
        other => other,
    }
}

/// The user's active sessions, newest first, marking the caller's. One round trip (a GSI query).
pub async fn list(
    state: &State,
    user: &User,
    current_session_id: Option<&str>,
    now: UnixTime,
) -> Result<Vec<SessionView>, Error> {
    let sessions = list_active(&state.store, user, now).await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionView {
            current: current_session_id == Some(s.id.as_str()),
            device: device_label(s.user_agent.as_deref()),
            created_at: crate::clock::rfc3339(s.created_at),
            last_seen_at: crate::clock::rfc3339(s.last_seen_at),
            expires_at: crate::clock::rfc3339(s.expires_at),
            id: s.id,
            ip: s.ip,
            user_agent: s.user_agent,
            amr: s.amr,
        })
        .collect())
}

/// Revokes one of the user's own sessions. Someone else's (or no) session is 404, never 403, so ids cannot be
/// probed. One round trip.
pub async fn revoke_own(state: &State, user: &User, session_id: &str, now: UnixTime) -> Result<(), Error> {
    if !tokens::is_session_id(session_id) {
        return Err(Error::NotFound);
    }
    let ending = Ending {
        kind: Kind::SessionRevoked,
        reason: "revoked",
    };
    match end(state, owner_of(user), session_id, ending, now).await? {
        Ended::Now | Ended::Before => Ok(()),
        Ended::NotTheirs => Err(Error::NotFound),
    }
}

/// Revokes every session of the user except `keep`: one transaction that bumps the session epoch, moves the
/// kept session to it and records the event. One round trip.
pub async fn revoke_all_but(state: &State, user: &User, keep: &str, now: UnixTime) -> Result<(), Error> {
    let new_epoch = user.session_epoch + 1;
    let event = Event::new(Kind::SessionRevoked, user, now, state.config.event_retention)
        .in_session(keep)
        .with("reason", "other_sessions_revoked");
    let items = vec![
        users::bump_epoch_item(&state.store, user, new_epoch, now)?,
        sessions::move_to_epoch_item(&state.store, keep, new_epoch)?,
        events::put_item(&state.store, &event)?,
    ];
    if state.store.transact(items).await? {
        Ok(())
    } else {
        Err(Error::SessionRevoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_group_nearby_addresses() {
        assert_eq!(network_of("203.0.113.9"), network_of("203.0.113.200"));
        assert_ne!(network_of("203.0.113.9"), network_of("203.0.114.9"));
        assert_eq!(network_of("2001:db8:1:2::1"), network_of("2001:db8:1:ffff::9"));
        assert_ne!(network_of("2001:db8:1::1"), network_of("2001:db8:2::1"));
        assert_eq!(network_of("not an address"), None);
        assert_eq!(network_of("::ffff:203.0.113.9"), network_of("203.0.113.1"));
        assert_ne!(network_of("::ffff:203.0.113.9"), network_of("::ffff:198.51.100.9"));
    }

    #[test]
    fn labels_common_browsers() {
        let firefox_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";
        assert_eq!(device_label(Some(firefox_mac)), "Firefox on macOS");
        let chrome_windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        assert_eq!(device_label(Some(chrome_windows)), "Chrome on Windows 10");
        assert_eq!(device_label(None), "Unknown device");
        assert_eq!(device_label(Some("")), "Unknown device");
    }
}
