//! End-to-end tests of admin.
