//! Accounts as a tenant sees them, and service accounts: created by a manager or root with a password and a
//! role ranked below the creator's, identified by `service_name` within their tenant, signing in with no email
//! (so no email reset, no second factor, and the backoff without the lock that only an email could lift).

use secrecy::SecretString;

use crate::auth::Principal;
use crate::backoff;
use crate::clock::UnixTime;
use crate::http::ClientInfo;
use crate::passwords::{self, Verified};
use crate::rate_limit;
use crate::session::{self, TokenResponse};
use crate::store::events::{self, Event, Kind};
use crate::store::sessions::{Lifetime, Session};
use crate::store::users::{self, AccountKind, AccountStatus, User};
use crate::tenancy::databases::{self, Database, Selector};
use crate::tenancy::roles::{self, Role};
use crate::{account, secret, Error, State};

/// Longest `frontend_user_id`, in characters.
pub const MAX_FRONTEND_USER_ID_CHARS: usize = 128;

/// Checks a service name: 3 to 64 of `a-z0-9._-` (422 `invalid_field` otherwise).
pub fn check_service_name(raw: &str) -> Result<String, Error> {
    let valid = (3..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(Error::InvalidField(
            "service_name must be 3 to 64 of a-z, 0-9, '.', '_' and '-'.".to_owned(),
        ))
    }
}

/// Checks an optional `frontend_user_id`: 1 to 128 printable characters (422 `invalid_field` otherwise).
pub fn check_frontend_user_id(raw: Option<String>) -> Result<Option<String>, Error> {
    match raw {
        None => Ok(None),
        Some(id)
            if !id.is_empty()
                && id.chars().count() <= MAX_FRONTEND_USER_ID_CHARS
                && !id.chars().any(char::is_control) =>
        {
            Ok(Some(id))
        }
        Some(_) => Err(Error::InvalidField(format!(
            "frontend_user_id must be 1 to {MAX_FRONTEND_USER_ID_CHARS} printable characters."
        ))),
    }
}

/// A service account to create, validated.
pub struct NewServiceAccount {
    /// Its name within the tenant.
    pub service_name: String,
    /// Its password, policy-checked here.
    pub password: SecretString,
    /// Its role, which must rank below the creator's.
    pub role: Role,
}

/// Creates a service account in the caller's tenant. Only a role ranked strictly below the caller's (403
/// `insufficient_scope`: nobody creates a root, only a root creates a manager). A name the tenant already uses is
/// 409 `conflict`. One round trip (the user and its name marker, one transaction), after argon2.
pub async fn create_service(
    state: &State,
    caller: &Principal,
    new: NewServiceAccount,
    now: UnixTime,
) -> Result<User, Error> {
    let tenant_id = caller.tenant_id()?;
    if !caller.role.is_some_and(|actor| roles::may_act_on(actor, new.role)) {
        return Err(Error::InsufficientScope(
            "An account can only create accounts ranked below its own.",
        ));
    }
    account::check_new_password(state, &new.password).await?;
    let hash = passwords::hash(&new.password).await?;
    let user = User::new_service(users::new_user_id(), tenant_id, new.service_name, new.role, hash, now);
    let event = crate::events::by(
        Event::new(Kind::ServiceAccountCreated, &user, now, state.config.event_retention),
        caller,
    )
    .with("role", new.role.as_str());
    let mut items = users::create_service_items(&state.store, &user)?;
    items.push(events::put_item(&state.store, &event)?);
    if state.store.transact(items).await? {
        Ok(user)
    } else {
        Err(Error::Conflict(
            "The tenant already has a service account with this name.",
        ))
    }
}

/// Where a service account's tenant comes from at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTenant {
    /// Named by id; the session has no database.
    Tenant(String),
    /// The tenant of this database, which the session is scoped to.
    Database(Selector),
}

impl ServiceTenant {
    /// Exactly one of `tenant_id`, `database_id` and `namespace` (422 `invalid_field` otherwise, or for a
    /// malformed one).
    pub fn from_fields(
        tenant_id: Option<String>,
        database_id: Option<String>,
        namespace: Option<String>,
    ) -> Result<Self, Error> {
        match (tenant_id, Selector::from_fields(database_id, namespace)?) {
            (Some(tenant), None) if users::is_id(&tenant) => Ok(Self::Tenant(tenant)),
            (None, Some(selector)) => Ok(Self::Database(selector)),
            (Some(_), None) => Err(Error::InvalidField("tenant_id is not a tenant id.".to_owned())),
            _ => Err(Error::InvalidField(
                "Give exactly one of tenant_id, database_id and namespace.".to_owned(),
            )),
        }
    }
}

/// A service account's sign-in, validated.
pub struct ServiceLogin {
    /// The account's name within its tenant.
    pub service_name: String,
    /// Its password.
    pub password: SecretString,
    /// Its tenant, directly or through a database.
    pub tenant: ServiceTenant,
    /// The end user a frontend account vouches for; required for frontend accounts, refused for others.
    pub frontend_user_id: Option<String>,
}

/// Claims a password attempt at the service account `name` of `tenant_id`, beside the read of its name's marker.
async fn claim(
    store: &crate::store::Store,
    tenant_id: &str,
    name: &str,
    now: UnixTime,
) -> (Result<backoff::Attempt, Error>, Result<Option<String>, Error>) {
    let key = users::service_backoff_key(tenant_id, name);
    tokio::join!(
        backoff::claim_without_lock(store, &key, now),
        users::id_for_service(store, tenant_id, name)
    )
}

/// Signs a service account in. An unknown tenant, database, name or a wrong password are all 401
/// `invalid_credentials`, after the same argon2 run. The password is checked before anything about the account
/// is told: then a disabled account is 403 `account_disabled`, and a frontend account without
/// `frontend_user_id` (or another with one) 422 `invalid_field`. The backoff applies, never the lock.
/// Five round trips in three round-trip times with `tenant_id`: (the IP counter, the backoff claim, the name
/// marker), the user, one transaction (the session, clearing the failures); with a database six in four, its read
/// concurrent with the IP counter, before the claim. A failure past the free ones writes its wait instead.
pub async fn login_service(
    state: &State,
    login: ServiceLogin,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("login-service");
    let limited = rate_limit::check_client_ip(store, &rule, client, now);
    let (tenant_id, database, (attempt, user_id)) = match &login.tenant {
        ServiceTenant::Tenant(id) => {
            // The counter runs beside the claim and the name's marker; a refused request gives its claim back, so
            // requests that never reach argon2 spend no attempts.
            let (limited, claimed) = tokio::join!(limited, claim(store, id, &login.service_name, now));
            if let Err(refused) = limited {
                if let (Ok(attempt), _) = claimed {
                    attempt.release(store).await?;
                }
                return Err(refused);
            }
            (id.clone(), None, claimed)
        }
        ServiceTenant::Database(selector) => {
            let (limited, database) = tokio::join!(limited, selector.lookup(store));
            limited?;
            let Some(database) = database? else {
                // No such database, so no account to check: the same argon2 run as a wrong password.
                passwords::verify(&login.password, None).await?;
                return Err(Error::InvalidCredentials);
            };
            let claimed = claim(store, &database.tenant_id, &login.service_name, now).await;
            (database.tenant_id.clone(), Some(database), claimed)
        }
    };
    let attempt = attempt?;
    let user = users::get(store, user_id?.as_deref().unwrap_or(&users::new_user_id()))
        .await?
        .filter(|user| user.kind == AccountKind::Service && user.tenant_id.as_deref() == Some(tenant_id.as_str()));
    let verified = passwords::verify(&login.password, user.as_ref().and_then(|u| u.password_hash.as_deref())).await?;
    let user = match (user, verified) {
        (Some(user), Verified::Yes | Verified::YesRehash) => user,
        _ => {
            attempt.failed(store, now).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    if user.status == AccountStatus::Disabled {
        attempt.failed(store, now).await?;
        return Err(Error::AccountDisabled);
    }
    let frontend = user.role == Some(Role::Frontend);
    if frontend != login.frontend_user_id.is_some() {
        attempt.release(store).await?;
        return Err(Error::InvalidField(if frontend {
            "A frontend account must name frontend_user_id.".to_owned()
        } else {
            "Only a frontend account names frontend_user_id.".to_owned()
        }));
    }
    let (mut session, refresh) = Session::start(&user, &["pwd"], client, Lifetime::from_config(&state.config), now);
    session.scope_to(database.as_ref());
    session.fuid = login.frontend_user_id;
    let mut items = vec![attempt.succeeded_item(store)?];
    items.extend(session::open_items(state, &user, &session, now)?);
    let (written, ()) = tokio::join!(
        store.transact(items),
        account::upgrade_hash(store, &user, &login.password, verified == Verified::YesRehash)
    );
    if !written? {
        return Err(Error::Conflict("The sign-in raced another request; try again."));
    }
    session::token_response(state, &user, &session, &refresh, now).await
}

/// A client-credentials sign-in (RFC 6749 §4.4), validated: the service account by id, its password as the
/// client secret.
pub struct ClientSignIn {
    /// The `client_id`: the service account's id (anything else is simply an unknown client).
    pub client_id: String,
    /// The `client_secret`: its password.
    pub secret: SecretString,
    /// The scopes asked for (`None`: all its role allows).
    pub scopes: Option<Vec<String>>,
    /// The database to scope the token to, if any.
    pub database: Option<Selector>,
}

/// What a client-credentials sign-in grants.
#[derive(Debug)]
pub struct ClientGrant {
    /// The service account, as read.
    pub user: User,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The database the token is scoped to.
    pub database: Option<Database>,
}

/// Checks a client-credentials sign-in. An unknown, malformed or non-service id, a wrong secret and a disabled
/// account are all 401 `invalid_credentials`, after the same reads, the same backoff claim and the same argon2
/// run (an unknown id claims a backoff record of its own, keyed by a hash of the id, so it costs what a known one
/// does). Only once the secret is right: a frontend account is 403 `insufficient_role` (it must vouch for an end
/// user, which this grant cannot say), a database not of its tenant 404, a scope beyond its role 422
/// `invalid_scope`. The per-IP limit and the backoff of [`login_service`] apply, on the same backoff record, never
/// the lock. Four round trips in three round-trip times: (the IP counter, the user, the database if named),
/// the backoff claim, one transaction clearing the failures; a failure past the free ones writes its wait instead.
pub async fn sign_in_client(
    state: &State,
    sign_in: ClientSignIn,
    client: &ClientInfo,
    now: UnixTime,
) -> Result<ClientGrant, Error> {
    let store = &state.store;
    let rule = state.config.rate_limits.verify_rule("oauth-token");
    // A malformed id reads a random one, so that it costs the round trip a well-formed unknown one does.
    let read_id = if users::is_id(&sign_in.client_id) {
        sign_in.client_id.clone()
    } else {
        users::new_user_id()
    };
    // `Some(found)` when a database was named, so that a named one that is missing is refused, not ignored.
    let lookup = async {
        match &sign_in.database {
            Some(selector) => selector.lookup(store).await.map(Some),
            None => Ok(None),
        }
    };
    let (limited, user, database) = tokio::join!(
        rate_limit::check_client_ip(store, &rule, client, now),
        users::get(store, &read_id),
        lookup
    );
    limited?;
    let user = user?.filter(|user| user.kind == AccountKind::Service && user.tenant_id.is_some());
    let database = database?;
    let key = match &user {
        Some(user) => user.backoff_key(),
        None => unknown_client_backoff_key(&sign_in.client_id),
    };
    let attempt = backoff::claim_without_lock(store, &key, now).await?;
    let verified = passwords::verify(&sign_in.secret, user.as_ref().and_then(|u| u.password_hash.as_deref())).await?;
    let user = match (user, verified) {
        (Some(user), Verified::Yes | Verified::YesRehash) if user.status == AccountStatus::Active => user,
        _ => {
            attempt.failed(store, now).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    let granted = grant_for(state, &user, sign_in.scopes, database);
    let (scopes, database) = match granted {
        Ok(granted) => granted,
        Err(err) => {
            attempt.release(store).await?;
            return Err(err);
        }
    };
    let (written, ()) = tokio::join!(
        store.transact(vec![attempt.succeeded_item(store)?]),
        account::upgrade_hash(store, &user, &sign_in.secret, verified == Verified::YesRehash)
    );
    written?;
    Ok(ClientGrant { user, scopes, database })
}

/// What a service account whose secret was right may have: not a frontend account's (it speaks for an end user
/// only through `/v1/auth/login/service`), only its own tenant's database, only scopes its role allows (all of
/// them when none are asked for).
fn grant_for(
    state: &State,
    user: &User,
    asked: Option<Vec<String>>,
    database: Option<Option<Database>>,
) -> Result<(Vec<String>, Option<Database>), Error> {
    if user
        .role
        .is_none_or(|role| role == Role::Frontend || role == Role::Root)
    {
        return Err(Error::InsufficientRole(
            "Only a manager or backend service account in a tenant is an OAuth client (a frontend one speaks for an \
             end user: it signs in at /v1/auth/login/service).",
        ));
    }
    let database = database
        .map(|found| databases::in_tenant(found, user.tenant_id.as_deref()))
        .transpose()?;
    let scopes = match asked {
        None => roles::scopes_of(&state.config, user.role)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        Some(asked) => match asked.iter().find(|s| !roles::allows(&state.config, user.role, s)) {
            Some(beyond) => {
                return Err(Error::InvalidScope(format!(
                    "The client's role does not allow the scope {beyond}."
                )))
            }
            None => asked,
        },
    };
    Ok((scopes, database))
}

/// The backoff key of a client id that names no service account: a hash, so that junk of any length makes a key
/// of one size, which can collide with neither an address (no `@`) nor a service account's key.
fn unknown_client_backoff_key(client_id: &str) -> String {
    format!(
        "oauth-client:{}",
        secret::sha256_b64(&[b"oauth-client", client_id.as_bytes()])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_and_frontend_user_ids_are_bounded() {
        assert!(check_service_name("billing.worker-1_a").is_ok());
        for bad in ["ab", "Billing", "a b", "a/b", &"a".repeat(65)] {
            assert!(check_service_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_frontend_user_id(None).unwrap(), None);
        assert!(check_frontend_user_id(Some("user 42 ✓".into())).is_ok());
        assert!(check_frontend_user_id(Some("x".repeat(128))).is_ok());
        for bad in [String::new(), "x".repeat(129), "a\nb".to_owned()] {
            assert!(check_frontend_user_id(Some(bad)).is_err());
        }
    }

    #[test]
    fn a_service_sign_in_names_exactly_one_tenant() {
        let tenant = users::new_user_id();
        assert_eq!(
            ServiceTenant::from_fields(Some(tenant.clone()), None, None).unwrap(),
            ServiceTenant::Tenant(tenant.clone())
        );
        assert!(matches!(
            ServiceTenant::from_fields(None, None, Some("contoso/default".into())).unwrap(),
            ServiceTenant::Database(Selector::Namespace(_))
        ));
        assert!(ServiceTenant::from_fields(None, None, None).is_err());
        assert!(ServiceTenant::from_fields(Some(tenant.clone()), Some(tenant), None).is_err());
        assert!(ServiceTenant::from_fields(Some("x".repeat(3000)), None, None).is_err());
    }
}
