//! One error type for every endpoint, each variant with a stable machine-readable code.

use std::fmt;

/// A dependency failure (DynamoDB, SES, Secrets Manager) kept with its cause for the log.
pub struct DependencyError {
    what: &'static str,
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl DependencyError {
    /// Wraps the failure of one dependency call, naming which call it was.
    pub fn new(what: &'static str, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            what,
            cause: Box::new(cause),
        }
    }
}

impl fmt::Debug for DependencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK's Debug output carries the whole cause chain, which is what an operator needs.
        write!(f, "{}: {:?}", self.what, self.cause)
    }
}

impl fmt::Display for DependencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.what)
    }
}

impl std::error::Error for DependencyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// Everything an endpoint can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON at all.
    #[error("The request body is not valid JSON.")]
    MalformedJson,
    /// The body is JSON but lacks a field or has a field of the wrong type.
    #[error("{0}")]
    InvalidRequest(String),
    /// The body exceeds the size limit.
    #[error("The request body is larger than {0} bytes.")]
    PayloadTooLarge(usize),
    /// The email address is not one we can deliver to.
    #[error("The email address is not valid.")]
    InvalidEmail,
    /// A field has a value outside what it accepts.
    #[error("{0}")]
    InvalidField(String),
    /// A requested scope is not in the vocabulary.
    #[error("{0}")]
    InvalidScope(String),
    /// The credential is valid but lacks what the endpoint needs (a scope, or an interactive session).
    #[error("{0}")]
    InsufficientScope(&'static str),
    /// The new password does not meet the policy.
    #[error("{0}")]
    WeakPassword(&'static str),
    /// The new password appears in a known data breach (the optional check).
    #[error("This password appears in a known data breach. Choose another one.")]
    BreachedPassword,
    /// Wrong email or password.
    #[error("The email or password is incorrect.")]
    InvalidCredentials,
    /// The current password given to change it is wrong.
    #[error("The current password is incorrect.")]
    WrongPassword,
    /// The password was right but the email has not been verified yet.
    #[error("The email address has not been verified yet.")]
    EmailNotVerified,
    /// The password was right but the account is disabled.
    #[error("This account is disabled.")]
    AccountDisabled,
    /// The credentials were right but the account's role may not do this (a root-only sign-in, say).
    #[error("{0}")]
    InsufficientRole(&'static str),
    /// Password login is locked after too many consecutive failures, until the owner proves the address.
    #[error("Too many failed sign-in attempts. Reset your password, or sign in with an emailed code or link.")]
    AccountLocked,
    /// The action needs a sign-in at most five minutes old (setting a first password, enrolling a second factor).
    #[error("Sign in again: this action needs a sign-in at most five minutes old.")]
    ReauthenticationRequired,
    /// Two-factor authentication is already on.
    #[error("Two-factor authentication is already on; disable it first to enrol a new authenticator.")]
    MfaAlreadyEnabled,
    /// Two-factor authentication is off, so there is nothing to disable or regenerate.
    #[error("Two-factor authentication is not on for this account.")]
    MfaNotEnabled,
    /// A passkey registration's credential did not verify (wrong origin or RP, no user verification, malformed).
    #[error("{0}")]
    InvalidPasskey(&'static str),
    /// The credential is registered to an account already.
    #[error("This passkey is registered already.")]
    PasskeyAlreadyRegistered,
    /// A passkey sign-in did not verify: as a wrong password, 401 `invalid_credentials`.
    #[error("{0}")]
    PasskeyRejected(&'static str),
    /// Enabling needs a setup of the last ten minutes.
    #[error("No two-factor setup is pending (or it expired); call /v1/auth/2fa/setup first.")]
    MfaSetupRequired,
    /// The emailed code is wrong, expired or used up.
    #[error("The code is invalid or has expired.")]
    InvalidCode,
    /// No usable bearer token or refresh token was presented.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// The session behind the token has been revoked or has expired.
    #[error("The session has been revoked.")]
    SessionRevoked,
    /// Another request rotated this refresh token a moment ago.
    #[error("This refresh token was just rotated by another request; use the newest refresh token.")]
    RefreshConflict,
    /// A concurrent request changed the resource first.
    #[error("{0}")]
    Conflict(&'static str),
    /// The account's password lives in the identity provider that provisioned it (Entra ID, LDAP).
    #[error("This account's password is managed by its identity provider.")]
    PasswordManagedExternally,
    /// A new external identity names the address of an existing account that it may not attach itself to.
    #[error("An account with this email address exists: sign in to it and link this identity from there.")]
    AccountExists,
    /// Root cannot leave a tenant that has other accounts.
    #[error("Transfer root to another account of the tenant first, or delete the other accounts.")]
    TransferRootFirst,
    /// The caller holds as many of something as it may (live scoped tokens, say); revoke one first.
    #[error("{0}")]
    LimitReached(&'static str),
    /// The route or resource does not exist, or is not the caller's.
    #[error("Not found.")]
    NotFound,
    /// The path exists, with other methods: these, for the `Allow` header (RFC 9110 §15.5.6).
    #[error("This method is not allowed here.")]
    MethodNotAllowed(String),
    /// Too many requests; retry after the given number of seconds.
    #[error("Too many requests. Try again later.")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after: i64,
    },
    /// A dependency is unavailable. The cause is logged, never returned.
    #[error("The service is temporarily unavailable. Try again shortly.")]
    Unavailable(#[source] DependencyError),
    /// The identity provider an address is routed to (an LDAP directory) did not answer; never a fallback to a
    /// local password. The cause is logged, never returned.
    #[error("{0}")]
    IdpUnavailable(&'static str),
}

impl Error {
    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::InvalidEmail => "invalid_email",
            Self::InvalidField(_) => "invalid_field",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::WrongPassword => "invalid_current_password",
            Self::WeakPassword(_) => "weak_password",
            Self::BreachedPassword => "breached_password",
            Self::InvalidCredentials | Self::PasskeyRejected(_) => "invalid_credentials",
            Self::InvalidPasskey(_) => "invalid_passkey",
            Self::PasskeyAlreadyRegistered => "passkey_already_registered",
            Self::EmailNotVerified => "email_not_verified",
            Self::AccountLocked => "account_locked",
            Self::AccountDisabled => "account_disabled",
            Self::InsufficientRole(_) => "insufficient_role",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::MfaAlreadyEnabled => "mfa_already_enabled",
            Self::MfaNotEnabled => "mfa_not_enabled",
            Self::MfaSetupRequired => "mfa_setup_required",
            Self::InvalidCode => "invalid_code",
            Self::InvalidToken(_) => "invalid_token",
            Self::SessionRevoked => "session_revoked",
            Self::RefreshConflict => "refresh_conflict",
            Self::Conflict(_) => "conflict",
            Self::PasswordManagedExternally => "password_managed_externally",
            Self::TransferRootFirst => "transfer_root_first",
            Self::AccountExists => "account_exists",
            Self::LimitReached(_) => "limit_reached",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "service_unavailable",
            Self::IdpUnavailable(_) => "idp_unavailable",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedJson | Self::InvalidRequest(_) | Self::InvalidCode | Self::InvalidPasskey(_) => 400,
            Self::InvalidCredentials | Self::PasskeyRejected(_) | Self::InvalidToken(_) | Self::SessionRevoked => 401,
            Self::EmailNotVerified
            | Self::WrongPassword
            | Self::AccountLocked
            | Self::AccountDisabled
            | Self::InsufficientRole(_)
            | Self::InsufficientScope(_)
            | Self::ReauthenticationRequired => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::RefreshConflict
            | Self::Conflict(_)
            | Self::PasswordManagedExternally
            | Self::TransferRootFirst
            | Self::AccountExists
            | Self::LimitReached(_)
            | Self::MfaAlreadyEnabled
            | Self::MfaNotEnabled
            | Self::MfaSetupRequired
            | Self::PasskeyAlreadyRegistered => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::InvalidEmail
            | Self::InvalidField(_)
            | Self::InvalidScope(_)
            | Self::WeakPassword(_)
            | Self::BreachedPassword => 422,
            Self::RateLimited { .. } => 429,
            Self::Unavailable(_) | Self::IdpUnavailable(_) => 503,
        }
    }

    /// Shorthand for a failed dependency call.
    pub fn dependency(what: &'static str, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(DependencyError::new(what, cause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_errors_hide_their_cause_from_clients() {
        let err = Error::dependency(
            "dynamodb GetItem",
            std::io::Error::other("connection refused to 10.0.0.1"),
        );
        assert_eq!(err.status(), 503);
        assert!(!err.to_string().contains("10.0.0.1"));
        assert!(format!("{err:?}").contains("connection refused"));
    }
}
