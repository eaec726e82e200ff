//! End-to-end tests of federated sign-in: Google and Entra ID against a local OpenID issuer.
