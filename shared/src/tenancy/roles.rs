//! The four roles, their rank, who may act on whom, and the one table of what each role may do.

use serde::{Deserialize, Serialize};

use crate::{scopes, Config, Error};

/// An account's role in its tenant, ranked root > manager > backend > frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Exactly one per tenant, always an individual account: everything.
    Root,
    /// Everything except what only root may do.
    Manager,
    /// Database resources only; manages no accounts or databases.
    Backend,
    /// The resources of one end user of the customer's app, named at login.
    Frontend,
}

/// The user's own scopes, which every role but frontend has.
const OWN_SCOPES: [&str; 6] = scopes::KEYGATE_SCOPES;

/// THE role table (README "Tenants, roles and databases"): the keygate scopes each role has beyond the user's own
/// (`profile:*`, `sessions:*`, `tokens:*`).
const ROLE_SCOPES: [(Role, &[&str]); 4] = [
    (
        Role::Root,
        &[
            "tenant:admin",
            "tenant:write",
            "accounts:read",
            "accounts:write",
            "admin:users",
            "databases:read",
            "databases:write",
            "db:read",
            "db:write",
        ],
    ),
    (
        Role::Manager,
        &[
            "tenant:write",
            "accounts:read",
            "accounts:write",
            "admin:users",
            "databases:read",
            "databases:write",
            "db:read",
            "db:write",
        ],
    ),
    (Role::Backend, &["databases:read", "db:read", "db:write"]),
    (Role::Frontend, &["db:user"]),
];

/// Every scope a role can carry, for the vocabulary PATs are checked against.
pub const TENANCY_SCOPES: [&str; 10] = [
    "tenant:admin",
    "tenant:write",
    "accounts:read",
    "accounts:write",
    "admin:users",
    "databases:read",
    "databases:write",
    "db:read",
    "db:write",
    "db:user",
];

impl Role {
    /// Higher ranks act on lower ones.
    pub fn rank(self) -> u8 {
        match self {
            Self::Root => 3,
            Self::Manager => 2,
            Self::Backend => 1,
            Self::Frontend => 0,
        }
    }

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Manager => "manager",
            Self::Backend => "backend",
            Self::Frontend => "frontend",
        }
    }

    /// Parses a role name; anything else is 422 `invalid_field`.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "root" => Ok(Self::Root),
            "manager" => Ok(Self::Manager),
            "backend" => Ok(Self::Backend),
            "frontend" => Ok(Self::Frontend),
            _ => Err(Error::InvalidField(
                "role must be one of root, manager, backend, frontend.".to_owned(),
            )),
        }
    }

    /// The tenancy scopes of the role (the table above), without the user's own.
    pub fn role_scopes(self) -> &'static [&'static str] {
        ROLE_SCOPES
            .iter()
            .find(|(role, _)| *role == self)
            .map(|(_, scopes)| *scopes)
            .unwrap_or_default()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an account of role `actor` may create, change, disable or delete an account of role `target`: only one
/// ranked strictly below it. Nobody acts on root this way (root is only transferred); acting on oneself is the
/// caller's business (`/v1/auth/*`), not this rule's.
pub fn may_act_on(actor: Role, target: Role) -> bool {
    actor.rank() > target.rank()
}

/// Whether a credential of an account with `role` may carry `scope`. `None` is an account not yet in a tenant
/// (made before tenancy, until its next login): the user's own and the deployment's custom scopes, as before.
/// Frontend accounts get none of the user's own scopes, nor custom ones: `db:user` only.
pub fn allows(config: &Config, role: Option<Role>, scope: &str) -> bool {
    let own_or_custom = || OWN_SCOPES.contains(&scope) || config.custom_scopes.iter().any(|s| s == scope);
    match role {
        None => own_or_custom(),
        Some(Role::Frontend) => Role::Frontend.role_scopes().contains(&scope),
        Some(role) => own_or_custom() || role.role_scopes().contains(&scope),
    }
}

/// Every scope of a role, in the table's order: the user's own, the role's, then the deployment's custom scopes.
pub fn scopes_of(config: &Config, role: Option<Role>) -> Vec<&str> {
    match role {
        Some(Role::Frontend) => Role::Frontend.role_scopes().to_vec(),
        None => scopes::vocabulary(config)
            .filter(|scope| allows(config, None, scope))
            .collect(),
        Some(role) => OWN_SCOPES
            .iter()
            .copied()
            .chain(role.role_scopes().iter().copied())
            .chain(config.custom_scopes.iter().map(String::as_str))
            .collect(),
    }
}

/// The JWT `scope` claim of a session of an account with `role`.
pub fn scope_claim(config: &Config, role: Option<Role>) -> String {
    scopes_of(config, role).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let vars: std::collections::HashMap<String, String> = [
            ("KEYGATE_TABLE", "t"),
            ("KEYGATE_KEY_SECRET_ID", "s"),
            ("KEYGATE_ISSUER", "https://auth.example.com"),
            ("KEYGATE_MAIL_FROM", "a@example.com"),
            ("KEYGATE_MAIL_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q"),
            ("KEYGATE_CUSTOM_SCOPES", "orders:read"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Config::from_vars(&vars).unwrap()
    }

    const ALL: [Role; 4] = [Role::Root, Role::Manager, Role::Backend, Role::Frontend];

    #[test]
    fn ranks_are_strict_and_only_lower_ranks_are_acted_on() {
        for actor in ALL {
            for target in ALL {
                assert_eq!(
                    may_act_on(actor, target),
                    actor.rank() > target.rank(),
                    "{actor} on {target}"
                );
            }
            assert!(!may_act_on(actor, Role::Root));
            assert!(!may_act_on(actor, actor));
        }
        assert!(may_act_on(Role::Root, Role::Manager));
        assert!(may_act_on(Role::Manager, Role::Backend));
        assert!(!may_act_on(Role::Manager, Role::Manager));
        // Rank alone: the scope table is what keeps a backend from managing accounts.
        assert!(may_act_on(Role::Backend, Role::Frontend));
    }

    #[test]
    fn roles_parse_and_serialise_alike() {
        for role in ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        assert!(Role::parse("Root").is_err());
        assert!(Role::parse("admin").is_err());
    }

    #[test]
    fn the_table_is_the_issues() {
        let config = config();
        let claim = |role| scope_claim(&config, Some(role));
        assert_eq!(
            claim(Role::Root),
            "profile:read profile:write sessions:read sessions:write tokens:read tokens:write tenant:admin \
             tenant:write accounts:read accounts:write admin:users databases:read databases:write db:read \
             db:write orders:read"
        );
        assert!(!claim(Role::Manager).contains("tenant:admin"));
        assert!(claim(Role::Manager).contains("accounts:write"));
        assert_eq!(
            claim(Role::Backend),
            "profile:read profile:write sessions:read sessions:write tokens:read tokens:write databases:read \
             db:read db:write orders:read"
        );
        assert_eq!(claim(Role::Frontend), "db:user");
        assert_eq!(
            scope_claim(&config, None),
            "profile:read profile:write sessions:read sessions:write tokens:read tokens:write orders:read"
        );
        for role in ALL {
            for scope in role.role_scopes() {
                assert!(TENANCY_SCOPES.contains(scope));
            }
        }
    }

    #[test]
    fn a_demoted_role_no_longer_allows_what_it_lost() {
        let config = config();
        assert!(allows(&config, Some(Role::Manager), "accounts:write"));
        assert!(!allows(&config, Some(Role::Backend), "accounts:write"));
        assert!(!allows(&config, Some(Role::Frontend), "profile:read"));
        assert!(!allows(&config, Some(Role::Frontend), "orders:read"));
        assert!(allows(&config, Some(Role::Backend), "orders:read"));
        assert!(!allows(&config, None, "db:read"));
    }
}
