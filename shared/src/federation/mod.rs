//! Federated sign-in: Google ID tokens and Microsoft Entra ID single sign-on, the identity-provider configuration,
//! and linking external identities to accounts so that no identity can take over an account.
//!
//! An identity is keyed by the IdP's stable subject (Google's `sub`; Entra's `tid` and `oid`), never by an email
//! claim (DESIGN §7). A returning identity signs in to the account it is linked to. A new one attaches to an
//! existing account by email only where the IdP is authoritative for the address and says it is verified (Google
//! for `gmail.com`, `googlemail.com` and its Workspace `hd` domain); Entra's `email` is never trusted that way
//! ("nOAuth").

pub mod config;
pub mod directory;
pub mod ldap;
pub mod linking;
pub mod oidc;
pub mod signin;

use serde::Serialize;

use crate::clock::{rfc3339, UnixTime};
use crate::email::Email;
use crate::store::ceremonies::{self, Ceremony, Kind};
use crate::store::identities::LinkedIdentity;
use crate::{secret, Error, State};
use config::{EntraEntry, IdpEntry, IdpKind};
use oidc::IdToken;

/// How long a sign-in started at an IdP can come back.
pub const SSO_STATE_TTL_SECONDS: i64 = 600;

/// The addresses Google is authoritative for whatever the Workspace.
const GOOGLE_DOMAINS: [&str; 2] = ["gmail.com", "googlemail.com"];

/// An external identity as its IdP vouched for it.
#[derive(Debug, Clone)]
pub struct External {
    /// `google` or `entra`.
    pub provider: &'static str,
    /// The stable subject.
    pub subject: String,
    /// The configuration entry it came through (Entra).
    pub idp: Option<String>,
    /// The address the IdP gave.
    pub email: Option<Email>,
    /// Whether the IdP is authoritative for that address and says it is verified.
    pub email_trusted: bool,
    /// The display name the IdP gave.
    pub name: Option<String>,
}

impl External {
    /// A Google identity: `sub`, and an address trusted only for Google's own domains or the token's `hd`.
    pub fn google(token: &IdToken) -> Self {
        let email = token.email.as_deref().and_then(|e| Email::parse(e).ok());
        let email_trusted = token.email_verified
            && email.as_ref().is_some_and(|email| {
                let domain = email.domain();
                GOOGLE_DOMAINS.contains(&domain) || token.hosted_domain.as_deref() == Some(domain)
            });
        Self {
            provider: "google",
            subject: token.subject.clone(),
            idp: None,
            email,
            email_trusted,
            name: clean(token.name.as_deref()),
        }
    }

    /// An Entra identity: `tid` and `oid`; its address is never trusted to find an account.
    pub fn entra(entry: &IdpEntry, token: &IdToken) -> Result<Self, Error> {
        let (Some(tid), Some(oid)) = (&token.tenant, &token.object_id) else {
            return Err(Error::InvalidToken("The identity token is invalid or has expired."));
        };
        Ok(Self {
            provider: "entra",
            subject: format!("{tid}:{oid}"),
            idp: Some(entry.id.clone()),
            email: token.email.as_deref().and_then(|e| Email::parse(e).ok()),
            email_trusted: false,
            name: clean(token.name.as_deref()),
        })
    }
}

fn clean(name: Option<&str>) -> Option<String> {
    crate::account::clean_name(Some(name.unwrap_or_default()), "name")
        .ok()
        .flatten()
}

/// A linked identity as its owner sees it.
#[derive(Debug, Serialize)]
pub struct IdentityView {
    /// The link's id.
    pub id: String,
    /// `google` or `entra`.
    pub provider: String,
    /// The IdP's stable subject.
    pub subject: String,
    /// The address the IdP gave when it was linked.
    pub email: Option<String>,
    /// RFC 3339.
    pub linked_at: String,
}

impl From<&LinkedIdentity> for IdentityView {
    fn from(identity: &LinkedIdentity) -> Self {
        Self {
            id: identity.id.clone(),
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            linked_at: rfc3339(identity.linked_at),
        }
    }
}

/// Where to send the browser to sign in at the IdP, and the `state` that will come back.
#[derive(Debug, Serialize)]
pub struct SsoStart {
    /// The IdP's authorization URL, with PKCE (S256), `state` and `nonce`.
    pub authorization_url: String,
    /// The opaque `state` (256-bit, single use, 10 minutes).
    pub state: String,
}

/// What an SSO ceremony keeps server-side between the redirect and the return.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SsoState {
    idp: String,
    nonce: String,
    verifier: String,
}

/// The Entra settings of an entry; an LDAP entry has no browser sign-in (404).
fn entra(entry: &IdpEntry) -> Result<&EntraEntry, Error> {
    match &entry.kind {
        IdpKind::Entra(entra) => Ok(entra),
        IdpKind::Ldap(_) => Err(Error::NotFound),
    }
}

/// Starts a sign-in (or, with `link`, a link for that user and session) at `entry`: stores the state with its
/// nonce and PKCE verifier and answers the authorization URL. One round trip.
async fn start(
    state: &State,
    entry: &IdpEntry,
    login_hint: Option<&str>,
    link: Option<(&str, &str)>,
    now: UnixTime,
) -> Result<SsoStart, Error> {
    use secrecy::ExposeSecret as _;
    let settings = entra(entry)?;
    let nonce = secret::random_b64(32);
    let (verifier, challenge) = oidc::pkce_pair();
    let kept = SsoState {
        idp: entry.id.clone(),
        nonce: nonce.clone(),
        verifier: verifier.expose_secret().to_owned(),
    };
    let kept = serde_json::to_string(&kept).map_err(|e| Error::dependency("encoding the SSO state", e))?;
    let (kind, user_id, session_id) = match link {
        Some((user_id, session_id)) => (Kind::SsoLink, user_id, Some(session_id.to_owned())),
        None => (Kind::SsoSignIn, "", None),
    };
    let (mut ceremony, id) = Ceremony::lasting(kind, kept, user_id, SSO_STATE_TTL_SECONDS, now);
    ceremony.session_id = session_id;
    ceremonies::put(&state.store, &ceremony).await?;
    Ok(SsoStart {
        authorization_url: oidc::authorization_url(settings, &id, &nonce, &challenge, login_hint),
        state: id,
    })
}

/// Finishes an SSO ceremony of `kind`: takes its state (single use; a state of the other kind, an expired or an
/// unknown one is 401 `invalid_token`), checks that it names `owner` (the user and session of a link; `None` for a
/// sign-in) before anything is sent to the IdP, redeems the code with the PKCE verifier, and verifies the ID token
/// and its nonce. The identity, and the configuration its entry was read from. Round trips: the state (one), then
/// the IdP (the code exchange, the JWKS when not cached).
async fn finish(
    state: &State,
    kind: Kind,
    code: &str,
    state_id: &str,
    owner: Option<(&str, &str)>,
    now: UnixTime,
) -> Result<(External, std::sync::Arc<config::IdpDocument>), Error> {
    const STALE: Error = Error::InvalidToken("The sign-in state is invalid, used or expired: start again.");
    let ceremony = ceremonies::take(&state.store, state_id, &[kind], now)
        .await?
        .ok_or(STALE)?;
    if let Some((user_id, session_id)) = owner {
        if ceremony.user_id != user_id || ceremony.session_id.as_deref() != Some(session_id) {
            return Err(STALE);
        }
    }
    let kept: SsoState = serde_json::from_str(&ceremony.state).map_err(|_| STALE)?;
    let document = state.idps.get(now).await?;
    let entry = document.entry(&kept.idp).ok_or(STALE)?;
    let settings = entra(entry)?;
    let raw = state
        .oidc
        .redeem_code(settings, code, &secrecy::SecretString::from(kept.verifier), now)
        .await?;
    let token = state.oidc.verify_entra(settings, &raw, now).await?;
    let nonce_matches = token
        .nonce
        .as_deref()
        .is_some_and(|nonce| secret::ct_eq(nonce, &kept.nonce));
    if !nonce_matches {
        return Err(Error::InvalidToken("The identity token is invalid or has expired."));
    }
    let external = External::entra(entry, &token)?;
    Ok((external, document.clone()))
}

/// 403 `reauthentication_required` unless the session signed in at most five minutes ago: a new way into the
/// account must not be something a stolen session can add.
fn require_fresh(session: &crate::store::sessions::Session, now: UnixTime) -> Result<(), Error> {
    if now - session.created_at > crate::account::REAUTHENTICATION_WINDOW_SECONDS {
        Err(Error::ReauthenticationRequired)
    } else {
        Ok(())
    }
}

/// Spends an ID token that signs in or links without a server-side nonce: accepted once, so a stolen one cannot be
/// replayed (401 `invalid_token` the second time). One round trip.
async fn spend(state: &State, raw: &str, expires_at: UnixTime) -> Result<(), Error> {
    if crate::store::identities::spend_id_token(&state.store, raw, expires_at).await? {
        Ok(())
    } else {
        Err(Error::InvalidToken("The identity token is invalid or has expired."))
    }
}
