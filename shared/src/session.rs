//! Session flows: issuing token responses, refresh with rotation and reuse detection, logout.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::federation::directory::{self, Recheck};
use crate::http::ClientInfo;
use crate::store::databases::{self, Database};
use crate::store::sessions::list_active;
use crate::store::sessions::{self, Inactive, Lifetime, RevokeProof, Rotation, Session};
use crate::store::users::{self, User, UserView};
use crate::store::{decode, Store};
use crate::tenancy::roles;
use crate::tokens::{self, AccessClaims, RefreshToken};
use crate::{secret, Error, State};

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
    let next = RefreshToken::generate(&session.id);
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

/// Starts a session for a user who just proved who they are, and returns its tokens. One round trip.
pub async fn start(
    state: &State,
    user: &User,
    amr: &[&str],
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let (session, refresh) = Session::start(user, amr, client, Lifetime::from_config(&state.config), now);
    sessions::create(&state.store, &session).await?;
    token_response(state, user, &session, &refresh, now).await
}

/// Exchanges a refresh token for new tokens, rotating it. Replaying any token the session rotated out revokes the
/// session, except the last one within the grace window right after a rotation, where two tabs may race (409
/// instead). No rotation takes the session past its absolute end.
/// The new access token keeps the session's database and frontend user and re-reads the role; a session whose
/// database was deleted (or whose account was disabled) is revoked (401 `session_revoked`).
/// A directory account's session re-asks its directory at most every fifteen minutes (see
/// [`directory::recheck`]): gone, the account's sessions and tokens end (401 `session_revoked`).
/// Three round trips: the session, the user (with the session's database, in one BatchGetItem), the rotation (one
/// transaction); one more to look up an older rotated-out token; a directory account's re-check adds its own.
pub async fn refresh(state: &State, raw: &str, now: UnixTime) -> Result<TokenResponse, Error> {
    const UNKNOWN: Error = Error::InvalidToken("The refresh token is invalid or has expired.");
    let presented = RefreshToken::parse(raw)?;
    let presented_hash = presented.hash();
    let session = sessions::get(&state.store, &presented.session_id)
        .await?
        .ok_or(UNKNOWN)?;
    let user = user_and_database(&state.store, &session).await?;
    match session.check_active(&user, now) {
        Ok(()) => {}
        Err(Inactive::Revoked) => return Err(Error::SessionRevoked),
        Err(Inactive::Expired) => return Err(UNKNOWN),
    }
    if !secret::ct_eq(&session.secret_hash, &presented_hash) {
        return reused_or_unknown(state, &session, &presented_hash, now).await;
    }
    // Only the holder of the current token makes keygate ask the directory.
    let checked = match directory::recheck(state, &user, &session, now).await? {
        Recheck::Confirmed => Some(now),
        Recheck::NotDue => None,
    };
    let next = RefreshToken::generate(&session.id);
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
            reused_or_unknown(state, &current, &presented_hash, now).await
        }
        Rotation::Lost(_) => Err(Error::SessionRevoked),
    }
}

/// The session's owner, and a check that the session's database (if any) still exists in the owner's tenant, in
/// one strongly consistent read. Either missing is 401 `session_revoked`.
async fn user_and_database(store: &Store, session: &Session) -> Result<User, Error> {
    let Some(db) = &session.db else {
        return users::get(store, &session.user_id).await?.ok_or(Error::SessionRevoked);
    };
    let items = store
        .batch_get(vec![users::user_key(&session.user_id), databases::database_key(db)])
        .await?;
    let (mut user, mut database) = (None, None);
    for item in items {
        let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        if pk.starts_with("USER#") {
            user = Some(decode::<User>(item)?);
        } else if pk.starts_with("DATABASE#") {
            database = Some(decode::<Database>(item)?);
        }
    }
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
        tracing::warn!(session = %session.id, "refresh token reuse detected; revoking the session");
        sessions::revoke(&state.store, &session.id, RevokeProof::Owner(&session.user_id), now).await?;
        return Err(Error::SessionRevoked);
    }
    Err(Error::InvalidToken("The refresh token is invalid or has expired."))
}

/// Logs out the session a refresh token belongs to, current or rotated out. Idempotent, and silent about unknown
/// sessions. One round trip; two more for a token the session rotated out before the last rotation.
pub async fn logout_with_refresh_token(state: &State, raw: &str, now: UnixTime) -> Result<(), Error> {
    let presented = RefreshToken::parse(raw)?;
    let hash = presented.hash();
    let revoked = sessions::revoke(
        &state.store,
        &presented.session_id,
        RevokeProof::RefreshHash(&hash),
        now,
    )
    .await?;
    if revoked {
        return Ok(());
    }
    if let Some(session) = sessions::get(&state.store, &presented.session_id).await? {
        if sessions::had_refresh_hash(&state.store, &session, &hash, now).await? {
            sessions::revoke(&state.store, &session.id, RevokeProof::Owner(&session.user_id), now).await?;
        }
    }
    Ok(())
}

/// Logs out the session of a verified access token. Idempotent. One round trip.
pub async fn logout_session(state: &State, claims: &AccessClaims, now: UnixTime) -> Result<(), Error> {
    sessions::revoke(&state.store, &claims.sid, RevokeProof::Owner(&claims.sub), now).await?;
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
    if sessions::revoke(&state.store, session_id, RevokeProof::Owner(&user.id), now).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Revokes every session of the user except `keep`: one transaction that bumps the session epoch and moves the
/// kept session to it. One round trip.
pub async fn revoke_all_but(state: &State, user: &User, keep: &str, now: UnixTime) -> Result<(), Error> {
    let new_epoch = user.session_epoch + 1;
    let items = vec![
        users::bump_epoch_item(&state.store, user, new_epoch, now)?,
        sessions::move_to_epoch_item(&state.store, keep, new_epoch)?,
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
    fn labels_common_browsers() {
        let firefox_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";
        assert_eq!(device_label(Some(firefox_mac)), "Firefox on macOS");
        let chrome_windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
        assert_eq!(device_label(Some(chrome_windows)), "Chrome on Windows 10");
        assert_eq!(device_label(None), "Unknown device");
        assert_eq!(device_label(Some("")), "Unknown device");
    }
}
