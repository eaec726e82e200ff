//! Bearer authentication: an access JWT whose session is still active, or a personal access token, checked
//! against what the endpoint needs.

use lambda_http::Request;

use crate::api_tokens::PatSecret;
use crate::clock::UnixTime;
use crate::pat::Pat;
use crate::store::api_tokens::ApiToken;
use crate::store::decode;
use crate::store::sessions::{self, Session};
use crate::store::users::{self, AccountKind, AccountStatus, User};
use crate::tenancy::{roles, Role};
use crate::tokens::{self, AccessClaims};
use crate::{api_tokens, http, Error, State};

/// What an endpoint requires of the bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An interactive session (a session JWT carrying `sessions:write`): password changes, managing sessions,
    /// switching database. PATs and root tokens are refused, and so are frontend tokens, which carry none of the
    /// user's own scopes.
    Interactive,
    /// Any credential that carries this scope.
    Scope(&'static str),
    /// Any valid credential; the endpoint decides (a PAT may always act on itself).
    Authenticated,
}

/// How the caller authenticated.
#[derive(Debug)]
pub enum Credential {
    /// An access JWT and its active session.
    Session(Box<Session>),
    /// A JWT with no session, stamped with the account's session epoch: a root token, or a service account's
    /// client-credentials token (then [`Principal::is_client_credentials`]; the account's kind tells them apart).
    Root,
    /// A personal access token.
    Pat {
        /// The token.
        token: Box<ApiToken>,
        /// Which of its secrets was presented.
        secret: PatSecret,
    },
}

/// The authenticated caller.
#[derive(Debug)]
pub struct Principal {
    /// The caller.
    pub user: User,
    /// The credential used.
    pub credential: Credential,
    /// What the credential may do: a JWT's `scope`, or a PAT's scopes narrowed to what its owner's current role
    /// allows.
    pub scopes: Vec<String>,
    /// The caller's tenant (`None` only for an account made before tenancy, until its next sign-in).
    pub tenant: Option<String>,
    /// The caller's role: a JWT's `role` claim (a demotion revokes the session), a PAT owner's current role.
    pub role: Option<Role>,
    /// The database a JWT is scoped to (id and namespace); PATs are not scoped to one.
    pub db: Option<(String, String)>,
    /// The end user a frontend JWT speaks for.
    pub fuid: Option<String>,
}

impl Principal {
    /// Whether the credential carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The caller's session, when it authenticated with one.
    pub fn session(&self) -> Option<&Session> {
        match &self.credential {
            Credential::Session(session) => Some(session),
            Credential::Root | Credential::Pat { .. } => None,
        }
    }

    /// The caller's session id, when it authenticated with a session.
    pub fn session_id(&self) -> Option<&str> {
        self.session().map(|s| s.id.as_str())
    }

    /// The calling token's id, when it authenticated with a PAT.
    pub fn token_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Pat { token, .. } => Some(&token.id),
            Credential::Session(_) | Credential::Root => None,
        }
    }

    /// Whether the caller is a PAT's previous secret, still inside its rotation grace period.
    pub fn is_grace_secret(&self) -> bool {
        matches!(
            self.credential,
            Credential::Pat {
                secret: PatSecret::Previous,
                ..
            }
        )
    }

    /// Whether the caller presented a client-credentials token (RFC 6749 §4.4): a sessionless JWT of a service
    /// account.
    pub fn is_client_credentials(&self) -> bool {
        matches!(self.credential, Credential::Root) && self.user.kind == AccountKind::Service
    }

    /// What kind of token the caller presented, as the authorizer's context names it: `jwt` (a session's),
    /// `root`, `client_credentials` or `pat`.
    pub fn token_type(&self) -> &'static str {
        match &self.credential {
            Credential::Session(_) => "jwt",
            Credential::Root if self.is_client_credentials() => "client_credentials",
            Credential::Root => "root",
            Credential::Pat { .. } => "pat",
        }
    }

    /// The caller's account kind.
    pub fn kind(&self) -> AccountKind {
        self.user.kind
    }

    /// The caller's tenant id, or 404 for an account in none (made before tenancy, not signed in since).
    pub fn tenant_id(&self) -> Result<&str, Error> {
        self.tenant.as_deref().ok_or(Error::NotFound)
    }

    /// The session of an [`Access::Interactive`] caller.
    pub fn interactive_session_id(&self) -> Result<&str, Error> {
        self.session_id().ok_or(NEEDS_SESSION)
    }
}

/// The scopes that make or change credentials, which a PAT's previous secret never carries.
const CREDENTIAL_SCOPES: [&str; 4] = ["tokens:write", "accounts:write", "admin:users", "tenant:admin"];

const NEEDS_SESSION: Error = Error::InsufficientScope("This action needs an interactive session, not an API token.");
const INVALID: Error = Error::InvalidToken("The access token is invalid or has expired.");

/// Verifies an access JWT offline against the cached keys (no DynamoDB call).
pub async fn verify_jwt(state: &State, token: &str, now: UnixTime) -> Result<AccessClaims, Error> {
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    let keys = state.keys.get_for_kid(kid.as_deref(), now).await?;
    tokens::verify_access_token(&keys, token, &state.config.issuer, &state.config.audience, now)
}

/// The bearer's verified JWT claims, without checking the session.
pub async fn bearer_claims(state: &State, req: &Request, now: UnixTime) -> Result<AccessClaims, Error> {
    let token = http::bearer_token(req).ok_or(Error::InvalidToken("Authentication is required."))?;
    verify_jwt(state, token, now).await
}

/// Authenticates the bearer and checks it against `access`.
pub async fn authenticate(state: &State, req: &Request, now: UnixTime, access: Access) -> Result<Principal, Error> {
    let token = http::bearer_token(req).ok_or(Error::InvalidToken("Authentication is required."))?;
    if access == Access::Interactive && Pat::has_prefix(token, &state.config.pat_prefix) {
        return Err(NEEDS_SESSION);
    }
    let principal = principal(state, token, now).await?;
    let needed = match access {
        Access::Scope(scope) => Some(scope),
        Access::Interactive if principal.session().is_none() => return Err(NEEDS_SESSION),
        Access::Interactive => Some("sessions:write"),
        Access::Authenticated => None,
    };
    if needed.is_some_and(|scope| !principal.has_scope(scope)) {
        return Err(Error::InsufficientScope(
            "The token lacks the scope this endpoint needs.",
        ));
    }
    Ok(principal)
}

/// Who a bearer token speaks for, checked the same way wherever a token is accepted (keygate's own endpoints and
/// the Lambda authorizer), so that a revocation takes effect everywhere at once. A disabled account's credentials
/// all fail. A PAT's scopes are narrowed, at each use, to what its owner's current role allows (so a demotion
/// narrows every PAT at once); a JWT's scopes are its claim, and a demotion revokes its session.
/// A JWT costs one strongly consistent BatchGetItem (session and user): a revoked, expired or pre-epoch session is
/// refused even while its JWT has not expired. A PAT costs two reads (token, then its owner's token epoch, role and
/// status), plus at most hourly the `last_used_at` write; a mistyped one none.
pub async fn principal(state: &State, token: &str, now: UnixTime) -> Result<Principal, Error> {
    if Pat::has_prefix(token, &state.config.pat_prefix) {
        let (api_token, secret) = api_tokens::verify(state, token, now).await?;
        let user = users::get(&state.store, &api_token.user_id)
            .await?
            // A frontend account acts for one end user per sign-in, so a standing token would speak for nobody.
            .filter(|user| {
                api_token.epoch >= user.token_epoch
                    && user.status != AccountStatus::Disabled
                    && user.role != Some(Role::Frontend)
            })
            .ok_or(INVALID)?;
        api_tokens::record_use(state, &api_token, now).await;
        let mut scopes = api_token.scopes.clone();
        scopes.retain(|scope| roles::allows(&state.config, user.role, scope));
        if secret == PatSecret::Previous {
            // A previous secret is usually the leaked one: it may use the token's scopes, but never make or change
            // a credential, or it could mint a token (for its owner or a service account), set a password or hand
            // root over, and outlive the rotation that was meant to end it.
            scopes.retain(|scope| !CREDENTIAL_SCOPES.contains(&scope.as_str()));
        }
        return Ok(Principal {
            tenant: user.tenant_id.clone(),
            role: user.role,
            user,
            scopes,
            credential: Credential::Pat {
                token: Box::new(api_token),
                secret,
            },
            db: None,
            fuid: None,
        });
    }
    let claims = verify_jwt(state, token, now).await?;
    jwt_principal(state, claims, now).await
}

/// Who a verified access JWT speaks for (see [`principal`]): a session's, checked against its session, or a
/// sessionless one (root, client credentials), checked against its account's epoch. A token that acts for
/// someone else (`act`: an exchanged token) never speaks for anyone here.
pub async fn jwt_principal(state: &State, claims: AccessClaims, now: UnixTime) -> Result<Principal, Error> {
    if claims.act.is_some() {
        return Err(INVALID);
    }
    if claims.sid.is_empty() {
        return sessionless_principal(state, claims).await;
    }
    let (session, user) = session_and_user(state, &claims).await?;
    session.check_active(&user, now).map_err(|_| Error::SessionRevoked)?;
    let scopes = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Principal {
        scopes,
        tenant: user.tenant_id.clone(),
        role: claims.role.as_deref().and_then(|role| Role::parse(role).ok()),
        db: claims.db.zip(claims.ns),
        fuid: claims.fuid,
        user,
        credential: Credential::Session(Box::new(session)),
    })
}

/// A token with no session, valid while its epoch stamp is the account's current session epoch (a disable, a
/// demotion, a deletion, a password change all bump it) and the account is active. Two kinds, which can never pass
/// for each other: a root token (no `client_id`) needs an individual account that is still its tenant's root; a
/// client-credentials token (`client_id`, its own `sub`) needs a service account that may still use the grant
/// (not frontend). One strongly consistent read.
async fn sessionless_principal(state: &State, claims: AccessClaims) -> Result<Principal, Error> {
    let user = users::get(&state.store, &claims.sub)
        .await?
        .ok_or(Error::SessionRevoked)?;
    let stamped = claims.epoch.is_some_and(|epoch| epoch >= user.session_epoch)
        && user.status == AccountStatus::Active
        && claims.fuid.is_none();
    let service = claims.acct.as_deref() == Some(AccountKind::Service.as_str());
    let kind_holds = match &claims.client_id {
        None => !service && user.kind == AccountKind::Individual && user.role == Some(Role::Root),
        Some(client_id) => {
            service
                && *client_id == user.id
                && user.kind == AccountKind::Service
                && user
                    .role
                    .is_some_and(|role| role != Role::Root && role != Role::Frontend)
        }
    };
    if !(stamped && kind_holds) {
        return Err(Error::SessionRevoked);
    }
    let mut scopes: Vec<String> = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // A role change bumps the epoch; narrowing anyway keeps the claim from ever outranking the account.
    scopes.retain(|scope| roles::allows(&state.config, user.role, scope));
    let db = if claims.client_id.is_some() {
        claims.db.zip(claims.ns)
    } else {
        None
    };
    Ok(Principal {
        scopes,
        tenant: user.tenant_id.clone(),
        role: user.role,
        db,
        fuid: None,
        user,
        credential: Credential::Root,
    })
}

async fn session_and_user(state: &State, claims: &AccessClaims) -> Result<(Session, User), Error> {
    let mut found = state
        .store
        .batch_get(vec![sessions::session_key(&claims.sid), users::user_key(&claims.sub)])
        .await?
        .into_iter();
    let session = found.next().flatten().map(decode::<Session>).transpose()?;
    let user = found.next().flatten().map(decode::<User>).transpose()?;
    match (session, user) {
        (Some(session), Some(user)) => Ok((session, user)),
        _ => Err(Error::SessionRevoked),
    }
}
