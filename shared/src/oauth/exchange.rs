//! Token exchange (RFC 8693): a user's access JWT becomes a short-lived JWT for one resource, with a subset of
//! the user's scopes that the deployment allows for anonymous use, to hand to someone who is not the user (a
//! dashboard link, an embedded report). It verifies with the public keys alone, so API Gateway's built-in JWT
//! authorizer accepts it with the resource as its audience, and keygate's own endpoints refuse it.

use serde::Serialize;

use super::{ExchangeRequest, OAuthError, ACCESS_TOKEN_TYPE};
use crate::auth::{self, Credential};
use crate::clock::UnixTime;
use crate::pat::Pat;
use crate::tenancy::Role;
use crate::tokens::{self, Actor, ExchangedClaims};
use crate::{secret, Error, State};

/// Longest life of an exchanged token, in seconds.
pub const MAX_LIFETIME_SECONDS: i64 = 15 * 60;
/// Longest resource id, in characters.
pub const MAX_RESOURCE_ID_CHARS: usize = 128;

/// The token response of RFC 8693 §2.2.1.
#[derive(Debug, Serialize)]
pub struct ExchangedToken {
    /// The exchanged JWT.
    pub access_token: String,
    /// Always an access token's type URI.
    pub issued_token_type: &'static str,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// Checks a `resource`: `<type>:<id>`, the type one the deployment declares, the id 1 to 128 of `A-Z a-z 0-9 . _
/// ~ -` (URI-unreserved, so that it can never hold a second colon, a slash or a space), and never keygate's own
/// audience. Anything else is `invalid_target`.
pub fn check_resource<'a>(raw: &'a str, declared: &[String], own_audience: &str) -> Result<&'a str, OAuthError> {
    let well_formed = raw.split_once(':').is_some_and(|(kind, id)| {
        declared.iter().any(|declared| declared == kind)
            && (1..=MAX_RESOURCE_ID_CHARS).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
    });
    if well_formed && raw != own_audience {
        Ok(raw)
    } else {
        Err(OAuthError::InvalidTarget(
            "resource must be <type>:<id>, of a resource type this deployment declares.".to_owned(),
        ))
    }
}

/// Exchanges `request.subject_token` for a token bound to `request.resource`. The subject must be an access JWT
/// of a session, or a client-credentials token, still valid as any bearer is (so a logout, a disable or a
/// demotion refuses it at once); a PAT, a scoped token, a root token, a frontend token and an exchanged token are
/// `invalid_request` (RFC 8693 §2.2.2 names no other code for an unacceptable subject). Each scope must be within
/// the subject's and the deployment's anonymous ones (`invalid_scope`). One round trip (the subject's check).
pub async fn exchange(state: &State, request: ExchangeRequest, now: UnixTime) -> Result<ExchangedToken, OAuthError> {
    const UNUSABLE: &str = "subject_token is not an access token that may be exchanged.";
    let config = &state.config;
    let resource = check_resource(&request.resource, &config.scoped_token_resources, &config.audience)?;
    if let Some(beyond) = request.scopes.iter().find(|s| !config.scoped_token_scopes.contains(s)) {
        return Err(OAuthError::InvalidScope(format!(
            "The scope {beyond} is not allowed in an exchanged token."
        )));
    }
    let token = request.subject_token.as_str();
    if Pat::has_prefix(token, &config.pat_prefix) || Pat::has_prefix(token, &config.scoped_token_prefix) {
        return Err(OAuthError::InvalidRequest(UNUSABLE.to_owned()));
    }
    let invalid = |err: Error| match err {
        Error::Unavailable(_) => OAuthError::TemporarilyUnavailable(err),
        _ => OAuthError::InvalidRequest("subject_token is invalid, expired or revoked.".to_owned()),
    };
    let claims = auth::verify_jwt(state, token, now).await.map_err(invalid)?;
    let subject_exp = claims.exp;
    let frontend = claims.fuid.is_some() || claims.role.as_deref() == Some(Role::Frontend.as_str());
    if frontend || claims.act.is_some() {
        return Err(OAuthError::InvalidRequest(UNUSABLE.to_owned()));
    }
    let principal = auth::jwt_principal(state, claims, now).await.map_err(invalid)?;
    let exchangeable = match &principal.credential {
        Credential::Session(_) => true,
        Credential::Root => principal.is_client_credentials(),
        Credential::Pat { .. } => false,
    };
    // A route checks the token's tenant against the resource's owner, so a subject in no tenant (an account from
    // before tenancy, until its next sign-in) cannot vouch for any resource.
    if !exchangeable || principal.fuid.is_some() || principal.role == Some(Role::Frontend) || principal.tenant.is_none()
    {
        return Err(OAuthError::InvalidRequest(UNUSABLE.to_owned()));
    }
    if let Some(beyond) = request.scopes.iter().find(|s| !principal.has_scope(s)) {
        return Err(OAuthError::InvalidScope(format!(
            "The subject token does not carry the scope {beyond}."
        )));
    }
    let scope = request.scopes.join(" ");
    let exp = (now + MAX_LIFETIME_SECONDS).min(subject_exp);
    let claims = ExchangedClaims {
        iss: config.issuer.clone(),
        // Not the subject's id: the bearer is someone the subject hands the token to, not the subject, and an
        // API that keys on `sub` must never take the visitor for the user. The token speaks for access to this
        // one resource, so that is its subject; the user who granted it is `act`.
        sub: resource.to_owned(),
        aud: resource.to_owned(),
        exp,
        iat: now,
        jti: secret::random_b64(16),
        scope: scope.clone(),
        tenant: principal.tenant.clone(),
        // A subject scoped to one database hands on no more than that database.
        db: principal.db.as_ref().map(|(id, _)| id.clone()),
        ns: principal.db.as_ref().map(|(_, ns)| ns.clone()),
        act: Actor {
            sub: principal.user.id.clone(),
        },
    };
    let keys = state.keys.signing(now).await?;
    Ok(ExchangedToken {
        access_token: tokens::sign_exchanged_token(&keys, &claims)?,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: exp - now,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_declared_types_with_plain_ids() {
        let declared = vec!["company".to_owned(), "report".to_owned()];
        for good in [
            "company:42",
            "report:q3-2025_v1.final~x",
            &format!("company:{}", "a".repeat(128)),
        ] {
            assert!(check_resource(good, &declared, "keygate").is_ok(), "{good}");
        }
        for bad in [
            "company",
            "company:",
            "invoice:42",
            ":42",
            "Company:42",
            "company:4 2",
            "company:a/b",
            "company:a:b",
            "company:é",
            "company:a%20b",
            &format!("company:{}", "a".repeat(129)),
        ] {
            assert!(
                matches!(
                    check_resource(bad, &declared, "keygate"),
                    Err(OAuthError::InvalidTarget(_))
                ),
                "{bad}"
            );
        }
        assert!(
            check_resource("company:42", &[], "keygate").is_err(),
            "none declared: none allowed"
        );
        assert!(
            check_resource("company:42", &declared, "company:42").is_err(),
            "never keygate's audience"
        );
    }
}
