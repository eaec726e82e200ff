//! Signing in with an external identity: a Google ID token, or Entra ID single sign-on (the code flow, or an ID
//! token a single-page app got with MSAL).

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::config::IdpEntry;
use super::{External, SsoStart};
use crate::account;
use crate::clock::UnixTime;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::mail::Mail;
use crate::mfa::challenge::SignIn;
use crate::rate_limit;
use crate::session::{self, TokenResponse};
use crate::store::ceremonies::Kind;
use crate::store::identities::{self, LinkedIdentity};
use crate::store::sessions::{Lifetime, Session};
use crate::store::tenants as tenant_store;
use crate::store::users::{self, AccountKind, MailboxProof, User};
use crate::tenancy::tenants;
use crate::{secret, Error, State};

/// Where an SSO sign-in starts: an address (home-realm discovery by its domain) or an entry's id.
#[derive(Debug, Clone)]
pub enum Realm {
    /// `?email=`: the entry authoritative for its domain, and a login hint.
    Email(Email),
    /// `?idp=`: that entry.
    Idp(String),
}

/// Signs in with a Google ID token: verified against Google's keys, for one of `KEYGATE_GOOGLE_CLIENT_IDS`,
/// `nonce` equal to the token's when given, and accepted once (its hash is kept until it expires). A 2FA
/// challenge follows for an account with 2FA on. Rate-limited per IP.
/// Round trips: the IP counter, the identity's marker (then the account, or the address's account for a new
/// identity), and one transaction; the JWKS fetch when its keys are not cached.
pub async fn google(
    state: &State,
    raw: &str,
    nonce: Option<&str>,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    let rule = state.config.rate_limits.verify_rule("google");
    rate_limit::check_client_ip(&state.store, &rule, client, now).await?;
    let token = state.oidc.verify_google(&state.config, raw, now).await?;
    if let Some(expected) = nonce {
        if !token.nonce.as_deref().is_some_and(|got| secret::ct_eq(got, expected)) {
            return Err(Error::InvalidToken("The identity token is invalid or has expired."));
        }
    }
    super::spend(state, raw, token.expires_at).await?;
    sign_in(state, External::google(&token), None, Vec::new(), client, now).await
}

/// Starts an Entra ID sign-in: finds the entry (by the address's domain, or by id; none is 404), stores the state,
/// nonce and PKCE verifier (single use, 10 minutes) and answers the authorization URL. Rate-limited per IP.
/// Two round trips (the IP counter, the state), and one Secrets Manager read when the configuration is not cached.
pub async fn sso_start(state: &State, realm: Realm, client: &ClientInfo, now: UnixTime) -> Result<SsoStart, Error> {
    let rule = state.config.rate_limits.verify_rule("sso-start");
    rate_limit::check_client_ip(&state.store, &rule, client, now).await?;
    let document = state.idps.get(now).await?;
    let (entry, hint) = match &realm {
        Realm::Email(email) => (document.for_domain(email.domain()), Some(email.as_str())),
        Realm::Idp(id) => (document.entry(id), None),
    };
    super::start(state, entry.ok_or(Error::NotFound)?, hint, None, now).await
}

/// Finishes an Entra ID sign-in from the code and state the IdP sent back: the state must be a sign-in state (a
/// link state is refused, so nobody can make a victim's session link their identity), then the code is redeemed
/// with the client secret and the PKCE verifier, and the ID token and its nonce verified. Rate-limited per IP.
/// Round trips: the IP counter, the state, the identity's marker (then the account), one transaction; the code
/// exchange at the IdP.
pub async fn sso_code(
    state: &State,
    code: &str,
    state_id: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    let rule = state.config.rate_limits.verify_rule("sso");
    rate_limit::check_client_ip(&state.store, &rule, client, now).await?;
    let (external, document) = super::finish(state, Kind::SsoSignIn, code, state_id, None, now).await?;
    let entry = external.idp.as_deref().and_then(|id| document.entry(id));
    sign_in(state, external.clone(), entry, Vec::new(), client, now).await
}

/// Signs in with an Entra ID token that a single-page app got itself (MSAL), for the entry `idp`: verified like
/// the code flow's, and accepted once (no server-side nonce vouches for it). Rate-limited per IP.
pub async fn sso_id_token(
    state: &State,
    raw: &str,
    idp: &str,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    let rule = state.config.rate_limits.verify_rule("sso");
    rate_limit::check_client_ip(&state.store, &rule, client, now).await?;
    let document = state.idps.get(now).await?;
    let entry = document.entry(idp).ok_or(Error::NotFound)?;
    let token = state.oidc.verify_entra(super::entra(entry)?, raw, now).await?;
    super::spend(state, raw, token.expires_at).await?;
    sign_in(
        state,
        External::entra(entry, &token)?,
        Some(entry),
        Vec::new(),
        client,
        now,
    )
    .await
}

/// Signs `external` in (see the module's rules), writing `items` (the spent token's mark) in the same transaction:
/// - linked: to the account it is linked to, whatever its address says now;
/// - new, with a trusted address of an existing individual account: linked to it (a pending one is verified
///   without its unproven password, as any first mailbox proof does);
/// - new, with the address of any other existing account: 409 `account_exists`;
/// - new, with no account: a new verified account without a password, in a tenant of its own (Google), or in the
///   entry's tenant with its default role and marked as provisioned by it (Entra: only for an address in the
///   entry's domains).
async fn sign_in(
    state: &State,
    external: External,
    entry: Option<&IdpEntry>,
    mut items: Vec<TransactWriteItem>,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<SignIn<TokenResponse>, Error> {
    let store = &state.store;
    const GONE: Error = Error::InvalidToken("The identity token is invalid or has expired.");
    // An Entra identity is always read through its entry; without one nothing below may treat it as Google's.
    if external.provider != "google" && entry.is_none() {
        return Err(GONE);
    }
    if let Some(user_id) = identities::owner_of(store, external.provider, &external.subject).await? {
        let user = users::get(store, &user_id).await?.ok_or(GONE)?;
        return account::sign_in_with_mailbox_proof(
            state,
            user,
            MailboxProof::SignIn,
            external.provider,
            items,
            client,
            now,
        )
        .await;
    }
    let email = external.email.clone().ok_or_else(|| {
        Error::InvalidField("The identity provider gave no email address for this account.".to_owned())
    })?;
    let link = |user_id: &str| {
        LinkedIdentity::new(
            user_id,
            external.provider,
            &external.subject,
            external.idp.as_deref(),
            Some(email.as_str()),
            now,
        )
    };
    // A directory account only for an address in the entry's domains: asked before the address's account, so the
    // answer tells nobody whether an address outside them has one.
    if let Some(entry) = entry {
        if !entry.domains.iter().any(|domain| domain == email.domain()) {
            return Err(Error::InvalidField(
                "The directory gave an address outside the domains this identity provider is configured for."
                    .to_owned(),
            ));
        }
    }
    // An address a directory is authoritative for signs in through the directory: no other provider may make or
    // claim an account for it, or a consumer account on a work address would squat the person's directory account.
    if entry.is_none() && super::directory::is_routed(state, &email, now).await? {
        return Err(Error::InvalidField(
            "This address signs in through its organization's directory, with its password there.".to_owned(),
        ));
    }
    if let Some(existing) = users::find_by_email(store, &email).await? {
        // Never into a directory's account, and never a second identity of the provider: a new Google `sub` for an
        // address that already has one is what a lapsed, re-registered Workspace domain looks like.
        let attachable = external.email_trusted
            && existing.kind == AccountKind::Individual
            && existing.idp.is_none()
            && !identities::list(store, &existing.id)
                .await?
                .iter()
                .any(|linked| linked.provider == external.provider);
        if !attachable {
            return Err(Error::AccountExists);
        }
        items.extend(identities::link_items(store, &link(&existing.id))?);
        let mail = Mail::IdentityLinked {
            provider: external.provider,
        };
        let signed_in = account::sign_in_with_mailbox_proof(
            state,
            existing.clone(),
            MailboxProof::SignIn,
            external.provider,
            items,
            client,
            now,
        )
        .await?;
        account::notify_owner(state, &existing, mail).await;
        return Ok(signed_in);
    }
    let mut user = User::new(users::new_user_id(), &email, external.name.clone(), None, None, now);
    user.email_verified = true;
    let mut tenant = match entry {
        Some(entry) => {
            user.join(&entry.tenant_id, entry.default_role);
            user.idp = Some(entry.id.clone());
            items.push(tenant_store::exists_check_item(store, &entry.tenant_id)?);
            None
        }
        None => Some(tenants::new_for_root(&mut user, now)),
    };
    items.extend(users::create_items(store, &user)?);
    items.extend(identities::link_items(store, &link(&user.id))?);
    let (session, refresh) = Session::start(
        &user,
        &[external.provider],
        client,
        Lifetime::from_config(&state.config),
        now,
    );
    items.extend(session::open_items(state, &user, &session, now)?);
    if !tenants::transact_creating(store, items, tenant.as_mut()).await? {
        return Err(Error::Conflict("The sign-in raced another request; try again."));
    }
    account::notify_owner(state, &user, Mail::Welcome { has_password: false }).await;
    Ok(SignIn::Complete(
        session::token_response(state, &user, &session, &refresh, now).await?,
    ))
}
