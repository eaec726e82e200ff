//! Tenancy: every account belongs to one tenant (an organization), holds one of four ranked roles, and may scope
//! its tokens to one of the tenant's databases. The role table here is the single source of a token's scopes;
//! `crate::store` keeps tenants and databases in the one table, unique through marker items (DESIGN §6).

pub mod accounts;
pub mod databases;
pub mod invitations;
pub mod roles;
pub mod service_accounts;
pub mod tenants;

pub use databases::Database;
pub use roles::Role;
pub use tenants::Tenant;
