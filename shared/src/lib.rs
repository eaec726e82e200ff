//! keygate's domain crate: everything the endpoint functions share, with no HTTP router in it.
#![warn(missing_docs)]

pub mod account;
pub mod admin;
pub mod api_tokens;
pub mod auth;
pub mod authorizer;
pub mod backoff;
pub mod breach;
pub mod cleanup;
pub mod clock;
pub mod config;
pub mod email;
pub mod error;
pub mod events;
pub mod federation;
pub mod http;
pub mod https;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod passwordless;
pub mod passwords;
pub mod pat;
pub mod rate_limit;
pub mod rotation;
pub mod routes;
pub mod runtime;
pub mod scoped_tokens;
pub mod scopes;
pub mod secret;
pub mod session;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod tokens;

pub use clock::Clock;
pub use config::Config;
pub use error::Error;
pub use state::State;
