//! Federated sign-in: Google ID tokens and Microsoft Entra ID single sign-on, the identity-provider configuration,
//! and linking external identities to accounts so that no identity can take over an account.

pub mod config;
pub mod oidc;
