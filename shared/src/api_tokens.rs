//! Personal access tokens: create, verify, rotate with a grace period, revoke.

use crate::auth::Principal;
use crate::clock::UnixTime;
use crate::pat::{self, Pat};
use crate::store::accounts;
use crate::store::api_tokens::{self, ApiToken, LAST_USED_RESOLUTION_SECONDS};
use crate::store::events::{self, Event, Kind};
use crate::store::users::{AccountKind, User};
use crate::tenancy::roles::{self, Role};
use crate::{scopes, secret, Error, State};

/// Lifetime when none is asked for.
pub const DEFAULT_LIFETIME_DAYS: i64 = 90;
/// Longest lifetime.
pub const MAX_LIFETIME_DAYS: i64 = 365;
/// How long the old secret keeps working after a rotation, when none is asked for.
pub const DEFAULT_GRACE_SECONDS: i64 = 86_400;
/// Longest grace period.
pub const MAX_GRACE_SECONDS: i64 = 30 * 86_400;

const INVALID: Error = Error::InvalidToken("The access token is invalid or has expired.");

/// Which secret of a token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatSecret {
    /// The current one.
    Current,
    /// The one before the last rotation, inside its grace period. It is usually the one that leaked, so it may use
    /// the token's scopes but never rotate or delete the token.
    Previous,
}

/// Verifies a PAT: the format and checksum first (no read for a typo), then one strongly consistent read, the
/// validity end (the item outlives it by thirty days) and a constant-time hash comparison with the current
/// secret, or with the previous one during its grace period. The owner's token epoch is checked by the caller
/// ([`crate::auth::principal`]).
pub async fn verify(state: &State, raw: &str, now: UnixTime) -> Result<(ApiToken, PatSecret), Error> {
    let presented = Pat::parse(raw, &state.config.pat_prefix)?;
    let token = api_tokens::get(&state.store, &presented.id).await?.ok_or(INVALID)?;
    if token.is_expired(now) {
        return Err(INVALID);
    }
    let hash = presented.hash();
    if secret::ct_eq(&token.secret_hash, &hash) {
        return Ok((token, PatSecret::Current));
    }
    let in_grace = token.previous_valid_until.is_some_and(|until| now < until)
        && token
            .previous_hash
            .as_deref()
            .is_some_and(|previous| secret::ct_eq(previous, &hash));
    if in_grace {
        Ok((token, PatSecret::Previous))
    } else {
        Err(INVALID)
    }
}

/// Records a use of a verified token, at most once an hour. Bookkeeping: a failure is logged, never returned.
pub async fn record_use(state: &State, token: &ApiToken, now: UnixTime) {
    if token
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_RESOLUTION_SECONDS)
    {
        if let Err(err) = api_tokens::touch(&state.store, &token.id, now).await {
            tracing::warn!(error = ?err, "recording a token's last use failed");
        }
    }
}

/// What a new token should be: the body of `POST /v1/api-tokens` and `POST /v1/accounts/{id}/api-tokens`.
#[derive(Debug, serde::Deserialize)]
pub struct NewToken {
    /// Label, 1 to 100 printable characters.
    pub name: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Lifetime in days, 1 to 365: absent (`None`) is 90, and JSON `null` (`Some(None)`) is a permanent token,
    /// which only a service account may hold, and only where the deployment allows it.
    #[serde(default, deserialize_with = "crate::http::nullable_whole_number")]
    pub expires_in_days: Option<Option<i64>>,
}

/// A new token of `owner`, validated: its name, its scopes (each one passing `may_carry`, 403 otherwise) and its
/// expiry (`None`: permanent).
struct Checked {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<UnixTime>,
}

fn check(
    state: &State,
    owner: &User,
    new: NewToken,
    may_carry: impl Fn(&str) -> bool,
    now: UnixTime,
) -> Result<Checked, Error> {
    if owner.idp.is_some() {
        // A directory would have no say over it: a token outlives the person's removal from the directory, and
        // nothing but a refresh or a sign-in asks the directory again.
        return Err(Error::InvalidField(
            "An account an identity provider signs in cannot hold personal access tokens; use a service account."
                .to_owned(),
        ));
    }
    let name = crate::account::clean_name(Some(&new.name), "name")?
        .ok_or_else(|| Error::InvalidField("name must not be empty.".to_owned()))?;
    let scopes = scopes::parse_requested(&state.config, &new.scopes)?;
    if !scopes.iter().all(|scope| may_carry(scope)) {
        return Err(Error::InsufficientScope(
            "A token cannot carry a scope its creator lacks or its owner's role does not allow.",
        ));
    }
    let expires_at = match new.expires_in_days {
        None => Some(now + DEFAULT_LIFETIME_DAYS * 86_400),
        Some(Some(days)) if (1..=MAX_LIFETIME_DAYS).contains(&days) => Some(now + days * 86_400),
        Some(Some(_)) => {
            return Err(Error::InvalidField(format!(
                "expires_in_days must be between 1 and {MAX_LIFETIME_DAYS}."
            )))
        }
        Some(None) if owner.kind == AccountKind::Service && state.config.m2m_permanent_tokens => None,
        Some(None) => {
            return Err(Error::InvalidField(
                "expires_in_days may be null (a permanent token) only for a service account, where the deployment \
                 allows permanent machine tokens."
                    .to_owned(),
            ))
        }
    };
    Ok(Checked {
        name,
        scopes,
        expires_at,
    })
}

/// The token record and its plaintext for a checked request, with the owner's current token epoch.
fn mint(state: &State, owner: &User, checked: Checked, now: UnixTime) -> (ApiToken, String) {
    let id = pat::new_id();
    let secret = Pat::generate(&id);
    let token = ApiToken::new(
        &id,
        &owner.id,
        owner.token_epoch,
        checked.name,
        checked.scopes,
        secret.hash(),
        now,
        checked.expires_at,
    );
    (token, secret.expose(&state.config.pat_prefix))
}

/// Creates a token for the caller. It can carry only scopes the caller's own credential has. The token and its
/// `api_token_created` event go in one transaction. One round trip.
pub async fn create(
    state: &State,
    owner: &Principal,
    new: NewToken,
    now: UnixTime,
) -> Result<(ApiToken, String), Error> {
    let checked = check(state, &owner.user, new, |scope| owner.has_scope(scope), now)?;
    let (token, plaintext) = mint(state, &owner.user, checked, now);
    let mut event = Event::new(Kind::ApiTokenCreated, &owner.user, now, state.config.event_retention)
        .with("token_id", &token.id)
        .with("scopes", token.scopes.join(" "));
    if let Some(session_id) = owner.session_id() {
        event = event.in_session(session_id);
    }
    let items = vec![
        api_tokens::create_item(&state.store, &token)?,
        events::put_item(&state.store, &event)?,
    ];
    if !state.store.transact(items).await? {
        // A fresh random id is never taken: as unexpected as the failed PutItem it replaces.
        return Err(Error::dependency(
            "dynamodb TransactWriteItems",
            std::io::Error::other("a new token's id was taken"),
        ));
    }
    Ok((token, plaintext))
}

/// Mints a token for `account`, a service account of the caller's tenant ranked below the caller (checked by
/// [`crate::tenancy::accounts::find_managed_service`]; never a frontend account: 422). The caller needs
/// `tokens:write` too, and the token can carry only scopes that both the caller's credential has and the
/// account's role allows. The token records who minted it; it and the admin event go in one transaction that holds
/// only while the account is as read. One round trip.
pub async fn create_for(
    state: &State,
    caller: &Principal,
    account: &User,
    new: NewToken,
    now: UnixTime,
) -> Result<(ApiToken, String), Error> {
    if !caller.has_scope("tokens:write") {
        return Err(Error::InsufficientScope(
            "Minting a token needs tokens:write as well as accounts:write.",
        ));
    }
    if account.role == Some(Role::Frontend) {
        return Err(Error::InvalidField(
            "A frontend account cannot hold API tokens: it signs in for one end user at a time.".to_owned(),
        ));
    }
    let may_carry = |scope: &str| caller.has_scope(scope) && roles::allows(&state.config, account.role, scope);
    let checked = check(state, account, new, may_carry, now)?;
    let (mut token, plaintext) = mint(state, account, checked, now);
    token.created_by = Some(caller.user.id.clone());
    let event = crate::events::by(
        Event::new(Kind::ApiTokenCreated, account, now, state.config.event_retention),
        caller,
    )
    .with("token_id", &token.id)
    .with("scopes", token.scopes.join(" "))
    .with("permanent", token.expires_at.is_none().to_string());
    // The account must still be as it was read: a deletion, a disable or a role change meanwhile fails the mint,
    // so no token outlives the account or escapes its role.
    let items = vec![
        accounts::unchanged_item(&state.store, account)?,
        api_tokens::create_item(&state.store, &token)?,
        events::put_item(&state.store, &event)?,
    ];
    if !state.store.transact(items).await? {
        return Err(Error::Conflict(
            "The account changed meanwhile; read it again and retry.",
        ));
    }
    Ok((token, plaintext))
}

/// A service account's live tokens, newest first (its token epoch applied), for whoever manages it. One round
/// trip.
pub async fn list_of(state: &State, account: &User, now: UnixTime) -> Result<Vec<ApiToken>, Error> {
    let mut tokens = api_tokens::list(&state.store, &account.id, now).await?;
    tokens.retain(|token| token.epoch >= account.token_epoch);
    Ok(tokens)
}

/// Revokes token `id` of a service account for whoever manages it, recording the admin event in the same
/// transaction; another account's token (or none) is 404. One round trip.
pub async fn revoke_for(
    state: &State,
    caller: &Principal,
    account: &User,
    id: &str,
    now: UnixTime,
) -> Result<(), Error> {
    if !secret::is_b64_of_len(id, 16) {
        return Err(Error::NotFound);
    }
    let event = crate::events::by(
        Event::new(Kind::ApiTokenDeleted, account, now, state.config.event_retention),
        caller,
    )
    .with("token_id", id);
    let items = vec![
        api_tokens::delete_item(&state.store, id, &account.id)?,
        events::put_item(&state.store, &event)?,
    ];
    if state.store.transact(items).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// The caller's tokens, newest first, without those revoked by a token-epoch bump. One round trip.
pub async fn list(state: &State, owner: &Principal, now: UnixTime) -> Result<Vec<ApiToken>, Error> {
    let mut tokens = api_tokens::list(&state.store, &owner.user.id, now).await?;
    tokens.retain(|token| token.epoch >= owner.user.token_epoch);
    Ok(tokens)
}

/// One of the caller's tokens; someone else's (or an expired one) is 404. One round trip.
pub async fn get_own(state: &State, owner: &Principal, id: &str, now: UnixTime) -> Result<ApiToken, Error> {
    if !secret::is_b64_of_len(id, 16) {
        return Err(Error::NotFound);
    }
    match api_tokens::get(&state.store, id).await? {
        Some(token)
            if token.user_id == owner.user.id && !token.is_expired(now) && token.epoch >= owner.user.token_epoch =>
        {
            Ok(token)
        }
        _ => Err(Error::NotFound),
    }
}

/// Whether the caller may change token `id`: with `tokens:write`, or by being that token. A secret in its grace
/// period never may change its own token: it is the one most likely to have leaked, and rotating or deleting
/// would take the token from its owner.
fn may_manage(owner: &Principal, id: &str) -> Result<(), Error> {
    let itself = owner.token_id() == Some(id);
    if itself && owner.is_grace_secret() {
        return Err(Error::InsufficientScope(
            "A secret in its rotation grace period cannot rotate or delete its own token.",
        ));
    }
    if owner.has_scope("tokens:write") || itself {
        Ok(())
    } else {
        Err(Error::InsufficientScope(
            "Managing this token needs tokens:write, or the token itself.",
        ))
    }
}

/// Gives a token a new secret, same id and scopes. The old secret keeps working for `grace_seconds` (default a
/// day, 0 allowed), so a pipeline can roll over without downtime. Two round trips (read, one transaction: the
/// conditional update and the `api_token_rotated` event).
pub async fn rotate(
    state: &State,
    owner: &Principal,
    id: &str,
    grace_seconds: Option<i64>,
    now: UnixTime,
) -> Result<(ApiToken, String), Error> {
    let grace = grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(Error::InvalidField(format!(
            "grace_period_seconds must be between 0 and {MAX_GRACE_SECONDS}."
        )));
    }
    may_manage(owner, id)?;
    let token = get_own(state, owner, id, now).await?;
    let secret = Pat::generate(id);
    let mut event = Event::new(Kind::ApiTokenRotated, &owner.user, now, state.config.event_retention)
        .with("token_id", id)
        .with("grace_period_seconds", grace.to_string());
    if let Some(session_id) = owner.session_id() {
        event = event.in_session(session_id);
    }
    let (item, rotated) = api_tokens::rotate_item(&state.store, &token, &secret.hash(), now + grace, now)?;
    let items = vec![item, events::put_item(&state.store, &event)?];
    if !state.store.transact(items).await? {
        return Err(Error::Conflict("The token was rotated or revoked by another request."));
    }
    Ok((rotated, secret.expose(&state.config.pat_prefix)))
}

/// Revokes a token at once, recording the `api_token_deleted` event in the same transaction. Someone else's is
/// 404. One round trip (none for a malformed id).
pub async fn revoke(state: &State, owner: &Principal, id: &str, now: UnixTime) -> Result<(), Error> {
    may_manage(owner, id)?;
    if !secret::is_b64_of_len(id, 16) {
        return Err(Error::NotFound);
    }
    let mut event =
        Event::new(Kind::ApiTokenDeleted, &owner.user, now, state.config.event_retention).with("token_id", id);
    if let Some(session_id) = owner.session_id() {
        event = event.in_session(session_id);
    }
    let items = vec![
        api_tokens::delete_item(&state.store, id, &owner.user.id)?,
        events::put_item(&state.store, &event)?,
    ];
    if state.store.transact(items).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
