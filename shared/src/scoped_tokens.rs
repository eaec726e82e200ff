//! Resource-scoped anonymous tokens: opaque, checksummed, stored hashed, bound to one resource and its creator.
//!
//! A signed-in user or a machine gives an anonymous visitor (a dashboard link, an embedded report) a few read
//! scopes on one resource, `<type>:<id>`. The wire form is a PAT's ([`crate::pat`]) under the deployment's scoped
//! prefix (`kgs` by default), so a typo costs no read and one can never pass for a PAT. keygate's own endpoints
//! refuse it ([`crate::auth`] knows only PATs and JWTs); the Lambda authorizer accepts it ([`verify`]). It works
//! only while its creator could still grant it: a deleted, disabled or demoted creator, or a token-epoch bump
//! (a password reset), ends it at once.

use crate::auth::Principal;
use crate::clock::UnixTime;
use crate::pat::{self, Pat};
use crate::store::events::{Event, Kind};
use crate::store::scoped_tokens::{self, ScopedToken, Slot};
use crate::store::users::{self, AccountStatus, User};
use crate::tenancy::roles;
use crate::{scopes, secret, Config, Error, State};

/// Lifetime when none is asked for.
pub const DEFAULT_LIFETIME_DAYS: i64 = 30;
/// Longest lifetime.
pub const MAX_LIFETIME_DAYS: i64 = 365;
/// Most live scoped tokens one creator may hold, so nobody fills the table.
pub const MAX_LIVE_PER_CREATOR: usize = 100;
/// Longest resource id (the part after `<type>:`).
pub const MAX_RESOURCE_ID_CHARS: usize = 128;
/// Token ids are 16 random bytes (22 base64url characters), as PATs'.
const ID_BYTES: usize = 16;
/// How often a creation retries after another request of the same creator changed its ledger first.
const LEDGER_ATTEMPTS: usize = 3;

const INVALID: Error = Error::InvalidToken("The access token is invalid or has expired.");

/// Whether this deployment has scoped tokens at all: it declares at least one resource type.
pub fn enabled(config: &Config) -> bool {
    !config.scoped_token_resources.is_empty()
}

/// Checks `<type>:<id>`: the type one the deployment declares, the id 1 to 128 of `A-Z a-z 0-9 - . _ ~` (URL-safe
/// unreserved characters, so the value is the same in a URL, a header and a log line). 422 `invalid_field`.
pub fn parse_resource(config: &Config, raw: &str) -> Result<(), Error> {
    let (kind, id) = raw
        .split_once(':')
        .ok_or_else(|| Error::InvalidField("resource must be <type>:<id>.".to_owned()))?;
    if !config.scoped_token_resources.iter().any(|declared| declared == kind) {
        return Err(Error::InvalidField(format!(
            "resource type must be one of: {}.",
            config.scoped_token_resources.join(", ")
        )));
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if id.is_empty() || id.len() > MAX_RESOURCE_ID_CHARS || !id.chars().all(safe) {
        return Err(Error::InvalidField(format!(
            "resource id must be 1 to {MAX_RESOURCE_ID_CHARS} of A-Z a-z 0-9 - . _ ~."
        )));
    }
    Ok(())
}

/// What a new scoped token should be.
pub struct NewScopedToken {
    /// `<type>:<id>`.
    pub resource: String,
    /// Requested scopes, without repeats.
    pub scopes: Vec<String>,
    /// Lifetime in days: absent is the default (30); present it must be a number from 1 to 365 (`null` is 422).
    pub expires_in_days: Option<Option<i64>>,
    /// Optional label, 1 to 100 printable characters.
    pub label: Option<String>,
}

/// Checks the requested scopes: known (422 `invalid_scope`), without repeats (422), allowed for anonymous use by
/// the deployment (422 `invalid_scope`), and carried by the creator's own credential (403 `insufficient_scope`),
/// in that order, as [`crate::api_tokens::create`] answers the same questions. Sorted.
fn check_scopes(config: &Config, creator: &Principal, requested: &[String]) -> Result<Vec<String>, Error> {
    let scopes = scopes::parse_requested(config, requested)?;
    if scopes.len() != requested.len() {
        return Err(Error::InvalidScope("scopes must not repeat.".to_owned()));
    }
    if let Some(scope) = scopes.iter().find(|s| !config.scoped_token_scopes.contains(s)) {
        return Err(Error::InvalidScope(format!(
            "{scope} is not allowed for scoped tokens here; allowed: {}.",
            config.scoped_token_scopes.join(", ")
        )));
    }
    if !scopes.iter().all(|scope| creator.has_scope(scope)) {
        return Err(Error::InsufficientScope(
            "A token cannot carry a scope its creator lacks.",
        ));
    }
    Ok(scopes)
}

/// Creates a scoped token for `creator`, stamped with its id, tenant and current token epoch. It can carry only
/// scopes the creator's own credential has and the deployment allows for anonymous use; a creator holds at most
/// [`MAX_LIVE_PER_CREATOR`] live ones (409 `limit_reached`). Two round trips (the creator's ledger, one
/// transaction writing the token, the ledger and the `scoped_token_created` event), a few more when a concurrent
/// creation of the same creator wins the ledger first.
pub async fn create(
    state: &State,
    creator: &Principal,
    new: NewScopedToken,
    now: UnixTime,
) -> Result<(ScopedToken, String), Error> {
    let config = &state.config;
    parse_resource(config, &new.resource)?;
    // A route checks a token's tenant against the resource's owner: a token without one could pass anywhere.
    creator.tenant_id()?;
    if creator.user.idp.is_some() {
        // It would outlive the person's removal from their directory, which nothing here would ask about.
        return Err(Error::InvalidField(
            "An account an identity provider signs in cannot create scoped tokens; use a service account.".to_owned(),
        ));
    }
    let scopes = check_scopes(config, creator, &new.scopes)?;
    let days = match new.expires_in_days {
        None => DEFAULT_LIFETIME_DAYS,
        Some(Some(days)) if (1..=MAX_LIFETIME_DAYS).contains(&days) => days,
        Some(_) => {
            return Err(Error::InvalidField(format!(
                "expires_in_days must be a number from 1 to {MAX_LIFETIME_DAYS}."
            )))
        }
    };
    let label = match new.label {
        None => None,
        Some(label) => Some(
            crate::account::clean_name(Some(&label), "label")?
                .ok_or_else(|| Error::InvalidField("label must not be empty.".to_owned()))?,
        ),
    };
    let user = &creator.user;
    let id = pat::new_id();
    let secret = Pat::generate(&id);
    let token = ScopedToken::new(
        &id,
        &user.id,
        user.tenant_id.clone(),
        user.token_epoch,
        new.resource,
        scopes,
        label,
        secret.hash(),
        now,
        now + days * 86_400,
    );
    let mut event = Event::new(Kind::ScopedTokenCreated, user, now, state.config.event_retention)
        .with("token_id", &id)
        .with("resource", &token.resource)
        .with("scopes", token.scopes.join(" "));
    if let Some(session_id) = creator.session_id() {
        event = event.in_session(session_id);
    }
    for _ in 0..LEDGER_ATTEMPTS {
        let mut ledger = scoped_tokens::ledger(&state.store, &user.id).await?;
        // Expired and epoch-revoked tokens no longer count.
        ledger
            .tokens
            .retain(|_, slot| slot.expires_at > now && slot.epoch >= user.token_epoch);
        if ledger.tokens.len() >= MAX_LIVE_PER_CREATOR {
            return Err(Error::LimitReached(
                "You hold the most live scoped tokens allowed (100); revoke one first.",
            ));
        }
        ledger.tokens.insert(
            id.clone(),
            Slot {
                expires_at: token.expires_at,
                epoch: token.epoch,
            },
        );
        if scoped_tokens::create(&state.store, &token, &ledger.tokens, ledger.version, &event).await? {
            return Ok((token, secret.expose(&config.scoped_token_prefix)));
        }
    }
    Err(Error::Conflict(
        "Other requests changed your scoped tokens meanwhile; try again.",
    ))
}

/// The caller's scoped tokens, newest first, without expired ones and those revoked by a token-epoch bump. One
/// round trip.
pub async fn list(state: &State, creator: &Principal, now: UnixTime) -> Result<Vec<ScopedToken>, Error> {
    let mut tokens = scoped_tokens::list(&state.store, &creator.user.id, now).await?;
    tokens.retain(|token| token.epoch >= creator.user.token_epoch);
    Ok(tokens)
}

/// Revokes one of the caller's scoped tokens at once, recording the `scoped_token_revoked` event in the same
/// transaction. Someone else's, a malformed id or a missing one is 404. One round trip (none for a malformed id).
pub async fn revoke(state: &State, creator: &Principal, id: &str, now: UnixTime) -> Result<(), Error> {
    if !secret::is_b64_of_len(id, ID_BYTES) {
        return Err(Error::NotFound);
    }
    let mut event = Event::new(
        Kind::ScopedTokenRevoked,
        &creator.user,
        now,
        state.config.event_retention,
    )
    .with("token_id", id);
    if let Some(session_id) = creator.session_id() {
        event = event.in_session(session_id);
    }
    if scoped_tokens::delete(&state.store, id, &creator.user.id, &event).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Whether `raw` has the scoped tokens' prefix (so it is neither a PAT nor a JWT).
pub fn has_prefix(config: &Config, raw: &str) -> bool {
    Pat::has_prefix(raw, &config.scoped_token_prefix)
}

/// Verifies a scoped token for the authorizer: the format and checksum first (no read for a typo), then one
/// strongly consistent read of the token, its validity end (the item outlives it by thirty days), a constant-time
/// hash comparison, then one strongly consistent read of the creator. The creator must still exist, be active,
/// hold the token epoch the token was made under, be in the token's tenant, and have a role that allows every
/// scope of it; the deployment must still declare the resource type and allow every scope for anonymous use.
/// Anything else is 401 `invalid_token`. Two round trips.
pub async fn verify(state: &State, raw: &str, now: UnixTime) -> Result<(ScopedToken, User), Error> {
    let config = &state.config;
    if !enabled(config) {
        return Err(INVALID);
    }
    let presented = Pat::parse(raw, &config.scoped_token_prefix)?;
    let token = scoped_tokens::get(&state.store, &presented.id).await?.ok_or(INVALID)?;
    if token.expires_at <= now || !secret::ct_eq(&token.secret_hash, &presented.hash()) {
        return Err(INVALID);
    }
    let creator = users::get(&state.store, &token.creator_id).await?.ok_or(INVALID)?;
    let still_granted = creator.status == AccountStatus::Active
        && creator.idp.is_none()
        && token.epoch >= creator.token_epoch
        && creator.tenant_id == token.tenant_id
        && token
            .scopes
            .iter()
            .all(|scope| roles::allows(config, creator.role, scope) && config.scoped_token_scopes.contains(scope))
        && parse_resource(config, &token.resource).is_ok();
    if still_granted {
        Ok((token, creator))
    } else {
        Err(INVALID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(resources: &str) -> Config {
        let vars: std::collections::HashMap<String, String> = [
            ("KEYGATE_TABLE", "t"),
            ("KEYGATE_KEY_SECRET_ID", "s"),
            ("KEYGATE_ISSUER", "https://auth.example.com"),
            ("KEYGATE_MAIL_FROM", "a@example.com"),
            ("KEYGATE_MAIL_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q"),
            ("KEYGATE_SCOPED_TOKEN_RESOURCES", resources),
            ("KEYGATE_SCOPED_TOKEN_SCOPES", "db:read"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Config::from_vars(&vars).unwrap()
    }

    #[test]
    fn resources_are_a_declared_type_and_a_safe_id() {
        let config = config("company,report");
        assert!(parse_resource(&config, "company:acme-42").is_ok());
        assert!(parse_resource(&config, "report:Q1.2026_v~2").is_ok());
        assert!(parse_resource(&config, &format!("company:{}", "a".repeat(128))).is_ok());
        for bad in [
            "company",
            "company:",
            "invoice:1",
            "Company:1",
            ":1",
            "company:a:b",
            "company:a b",
            "company:a/b",
            "company:é",
            "company:<script>",
            &format!("company:{}", "a".repeat(129)),
        ] {
            assert!(
                matches!(parse_resource(&config, bad), Err(Error::InvalidField(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_resource_type_turns_the_feature_off() {
        assert!(!enabled(&config("")));
        assert!(enabled(&config("company")));
        assert_eq!(config("").scoped_token_prefix, "kgs");
    }

    #[test]
    fn the_wire_form_is_never_a_pat() {
        let config = config("company");
        let wire = Pat::generate(&pat::new_id()).expose(&config.scoped_token_prefix);
        assert!(has_prefix(&config, &wire));
        assert!(!Pat::has_prefix(&wire, &config.pat_prefix));
        assert!(Pat::parse(&wire, &config.pat_prefix).is_err());
        let pat = Pat::generate(&pat::new_id()).expose(&config.pat_prefix);
        assert!(!has_prefix(&config, &pat));
    }
}
