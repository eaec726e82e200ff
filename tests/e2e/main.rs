//! End-to-end tests: every flow over HTTP against the local API and moto. One binary, to keep link time down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
mod accounts;
mod admin;
mod api_tokens;
mod authorizer;
mod bad_input;
mod breach;
mod cleanup;
mod events;
mod events_factors;
mod events_flows;
mod events_review;
mod federation;
mod handlers;
mod hardening;
mod keys;
mod ldap;
mod ldap_review;
mod ldap_review2;
mod mail;
mod metrics;
mod oauth;
mod passkeys;
mod password;
mod passwordless;
mod rate_limits;
mod registration;
mod routes;
mod scoped_tokens;
mod sessions;
mod template;
mod tenancy;
mod token_retention;
mod tokens;
mod two_factor;
