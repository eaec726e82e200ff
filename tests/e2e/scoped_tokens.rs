//! End-to-end tests of scoped tokens.
