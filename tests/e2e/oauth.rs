//! End-to-end tests of oauth.
