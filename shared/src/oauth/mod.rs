//! OAuth 2.0 at `/v1/oauth/token`: the client-credentials grant (RFC 6749 §4.4) and token exchange (RFC 8693).
//! This endpoint speaks RFC 6749, not keygate's JSON conventions (DESIGN §4): form-encoded requests, and errors as
//! `{"error", "error_description"}` (§5.2), because standard OAuth clients parse them.

pub mod client_credentials;
pub mod exchange;
pub mod form;

use lambda_http::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Serialize;

use crate::tenancy::databases::Selector;
use crate::{http, scopes, Error};
use form::Form;

/// The `grant_type` of the client-credentials grant.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// The `grant_type` of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type URI of an access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Most scopes one request may name.
const MAX_SCOPES: usize = 64;
/// Every parameter either grant reads: each may be given once; any other is ignored (RFC 6749 §3.2).
const PARAMETERS: [&str; 13] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "database_id",
    "namespace",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "audience",
    "resource",
];

/// An error of the token endpoint, as RFC 6749 §5.2 (and RFC 8693 §2.2.2) name them.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The request is malformed: a missing or repeated parameter, a wrong content type, a bad value.
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, wrong secret, disabled, none, or malformed). 401 with
    /// `WWW-Authenticate: Basic`.
    #[error("Client authentication failed.")]
    InvalidClient,
    /// The client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    /// The grant type is not one this server supports.
    #[error("The grant_type is not supported: use client_credentials or token exchange.")]
    UnsupportedGrantType,
    /// A requested scope is unknown, malformed, or beyond what the client or subject may have.
    #[error("{0}")]
    InvalidScope(String),
    /// The `resource` is not one a token may be issued for (RFC 8693 §2.2.2).
    #[error("{0}")]
    InvalidTarget(String),
    /// Too many requests (the per-IP limit or the client's backoff): 429 with `Retry-After`.
    #[error("Too many requests. Try again later.")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after: i64,
    },
    /// A dependency failed; the cause is logged, never returned. 503.
    #[error("The service is temporarily unavailable. Try again shortly.")]
    TemporarilyUnavailable(#[source] Error),
}

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::RateLimited { .. } => "rate_limited",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::RateLimited { .. } => 429,
            Self::TemporarilyUnavailable(_) => 503,
            _ => 400,
        }
    }
}

impl From<Error> for OAuthError {
    /// Keygate's errors where the grants do not name a more precise one: a limit stays a limit, a dependency
    /// failure is `temporarily_unavailable`, any other refusal `invalid_request` with keygate's own message
    /// (which never quotes a secret).
    fn from(err: Error) -> Self {
        match err {
            Error::RateLimited { retry_after } => Self::RateLimited { retry_after },
            Error::Unavailable(_) => Self::TemporarilyUnavailable(err),
            other => Self::InvalidRequest(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
}

/// Turns a grant's result into the response: the token body, or the error of RFC 6749 §5.2. Both are
/// `Cache-Control: no-store` and `Pragma: no-cache` (§5.1).
pub fn respond<T: Serialize>(result: Result<T, OAuthError>) -> Response<Body> {
    let mut response = match result {
        Ok(body) => http::json(200, &body),
        Err(err) => error_response(&err),
    };
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn error_response(err: &OAuthError) -> Response<Body> {
    let status = err.status();
    if status >= 500 {
        tracing::error!(code = err.code(), error = ?err, "token request failed");
    } else {
        tracing::info!(code = err.code(), status, "token request refused");
    }
    let mut response = http::json(
        status,
        &ErrorBody {
            error: err.code(),
            error_description: err.to_string(),
        },
    );
    let headers = response.headers_mut();
    match err {
        OAuthError::InvalidClient => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="keygate""#));
        }
        OAuthError::RateLimited { retry_after } => {
            if let Ok(value) = HeaderValue::from_str(&retry_after.max(&1).to_string()) {
                headers.insert(RETRY_AFTER, value);
            }
        }
        OAuthError::TemporarilyUnavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// A token request, parsed and checked for shape (nothing read yet).
pub enum TokenRequest {
    /// `grant_type=client_credentials`.
    ClientCredentials(ClientCredentialsRequest),
    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
    Exchange(ExchangeRequest),
}

/// A client-credentials request: the client as it authenticated, and what it asks for.
pub struct ClientCredentialsRequest {
    /// The `client_id`.
    pub client_id: String,
    /// The `client_secret`.
    pub client_secret: SecretString,
    /// The scopes asked for; `None` for all the client's role allows.
    pub scopes: Option<Vec<String>>,
    /// The database to scope the token to.
    pub database: Option<Selector>,
}

/// A token-exchange request (RFC 8693 §2.1).
pub struct ExchangeRequest {
    /// The `subject_token`: an access JWT.
    pub subject_token: String,
    /// The `resource`, `<type>:<id>`, unchecked.
    pub resource: String,
    /// The scopes asked for (required).
    pub scopes: Vec<String>,
}

impl TokenRequest {
    /// Reads a token request: a form body (any other content type is `invalid_request`), its `grant_type`
    /// (missing: `invalid_request`; unknown: `unsupported_grant_type`), and that grant's parameters.
    pub fn from_http(req: &Request) -> Result<Self, OAuthError> {
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(form::is_form_content_type) {
            return Err(OAuthError::InvalidRequest(
                "The body must be application/x-www-form-urlencoded.".to_owned(),
            ));
        }
        let mut form = Form::parse_known(req.body().as_ref(), &PARAMETERS)?;
        match form.require("grant_type")? {
            CLIENT_CREDENTIALS => {
                let authorization = match req.headers().get(AUTHORIZATION) {
                    Some(value) => Some(value.to_str().map_err(|_| OAuthError::InvalidClient)?),
                    None => None,
                };
                ClientCredentialsRequest::from_form(&mut form, authorization).map(Self::ClientCredentials)
            }
            TOKEN_EXCHANGE => ExchangeRequest::from_form(&form).map(Self::Exchange),
            _ => Err(OAuthError::UnsupportedGrantType),
        }
    }
}

impl ClientCredentialsRequest {
    /// The client authenticates with exactly one method (RFC 6749 §2.3): `client_secret_basic` (the
    /// `Authorization: Basic` header, where a body `client_id`, if any, must be the same) or
    /// `client_secret_post` (`client_id` and `client_secret` in the body). Both at once is `invalid_request`;
    /// none, another scheme, or a malformed header is `invalid_client`.
    fn from_form(form: &mut Form, authorization: Option<&str>) -> Result<Self, OAuthError> {
        let posted_secret = form.take("client_secret").map(SecretString::from);
        let posted_id = form.get("client_id").map(str::to_owned);
        let (client_id, client_secret) = match (authorization, posted_secret) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "Authenticate the client one way: the Authorization header or client_secret, not both.".to_owned(),
                ))
            }
            (Some(header), None) => {
                let (id, secret) = form::basic_credentials(header).ok_or(OAuthError::InvalidClient)??;
                if posted_id.as_ref().is_some_and(|posted| *posted != id) {
                    return Err(OAuthError::InvalidRequest(
                        "client_id differs from the client of the Authorization header.".to_owned(),
                    ));
                }
                (id, secret)
            }
            (None, Some(secret)) => (posted_id.ok_or(OAuthError::InvalidClient)?, secret),
            (None, None) => return Err(OAuthError::InvalidClient),
        };
        let database = Selector::from_fields(
            form.get("database_id").map(str::to_owned),
            form.get("namespace").map(str::to_owned),
        )
        .map_err(OAuthError::from)?;
        Ok(Self {
            client_id,
            client_secret,
            scopes: form.get("scope").map(parse_scope).transpose()?,
            database,
        })
    }
}

impl ExchangeRequest {
    /// `subject_token` and `subject_token_type` (an access token's) are required, and so are `resource` and
    /// `scope`. keygate issues tokens for no other party, so `actor_token` and `audience` are refused, and a
    /// `requested_token_type` can only be an access token.
    fn from_form(form: &Form) -> Result<Self, OAuthError> {
        let subject_token = form.require("subject_token")?.to_owned();
        if form.require("subject_token_type")? != ACCESS_TOKEN_TYPE {
            return Err(OAuthError::InvalidRequest(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE}."
            )));
        }
        if form.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::InvalidRequest(format!(
                "requested_token_type can only be {ACCESS_TOKEN_TYPE}."
            )));
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(OAuthError::InvalidRequest(
                "Delegation with an actor_token is not supported.".to_owned(),
            ));
        }
        if form.get("audience").is_some() {
            return Err(OAuthError::InvalidTarget(
                "Name the token's target with resource, not audience.".to_owned(),
            ));
        }
        Ok(Self {
            subject_token,
            resource: form.require("resource")?.to_owned(),
            scopes: parse_scope(form.require("scope")?)?,
        })
    }
}

/// Parses a `scope` parameter (RFC 6749 §3.3): space-separated, each well formed, duplicates dropped, at most
/// [`MAX_SCOPES`]. Anything else is `invalid_scope`.
pub fn parse_scope(raw: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw.split(' ').filter(|s| !s.is_empty()) {
        if !scopes::is_well_formed(scope) {
            return Err(OAuthError::InvalidScope("A requested scope is malformed.".to_owned()));
        }
        if !scopes.iter().any(|seen| seen == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if scopes.is_empty() || scopes.len() > MAX_SCOPES {
        return Err(OAuthError::InvalidScope(format!(
            "scope must name 1 to {MAX_SCOPES} scopes."
        )));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_and_deduplicated() {
        assert_eq!(
            parse_scope("db:read  db:read accounts:read").unwrap(),
            ["db:read", "accounts:read"]
        );
        for bad in ["   ", "DB:read", "db:read\tx", "db:read é", &"a".repeat(65)] {
            assert!(matches!(parse_scope(bad), Err(OAuthError::InvalidScope(_))), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert!(parse_scope(&many.join(" ")).is_err());
    }

    #[test]
    fn errors_follow_rfc_6749() {
        let response = respond::<()>(Err(OAuthError::InvalidClient));
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], r#"Basic realm="keygate""#);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()[PRAGMA], "no-cache");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(body["error_description"].is_string());
        let limited = respond::<()>(Err(OAuthError::RateLimited { retry_after: 9 }));
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()[RETRY_AFTER], "9");
        let down = respond::<()>(Err(Error::dependency("x", std::io::Error::other("10.0.0.1")).into()));
        assert_eq!(down.status(), 503);
        assert!(!String::from_utf8_lossy(down.body().as_ref()).contains("10.0.0.1"));
    }

    fn request(content_type: &str, authorization: Option<&str>, body: &str) -> Request {
        let mut req = Request::new(Body::Text(body.to_owned()));
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        if let Some(value) = authorization {
            req.headers_mut()
                .insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        req
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    fn code(result: Result<TokenRequest, OAuthError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(err) => err.code(),
        }
    }

    #[test]
    fn reads_client_authentication_one_way_only() {
        let basic = "Basic aWQ6c2VjcmV0"; // id:secret
        let cc = "grant_type=client_credentials";
        for (content_type, authorization, body, want) in [
            (FORM, Some(basic), cc.to_owned(), "ok"),
            (FORM, Some(basic), format!("{cc}&client_id=id"), "ok"),
            (FORM, None, format!("{cc}&client_id=id&client_secret=secret"), "ok"),
            (FORM, Some(basic), format!("{cc}&client_id=other"), "invalid_request"),
            (
                FORM,
                Some(basic),
                format!("{cc}&client_id=id&client_secret=secret"),
                "invalid_request",
            ),
            (FORM, None, cc.to_owned(), "invalid_client"),
            (FORM, None, format!("{cc}&client_id=id"), "invalid_client"),
            (FORM, None, format!("{cc}&client_secret=secret"), "invalid_client"),
            (FORM, Some("Bearer abc"), cc.to_owned(), "invalid_client"),
            (FORM, Some("Basic %%%"), cc.to_owned(), "invalid_client"),
            (FORM, Some(basic), format!("{cc}&scope=BAD"), "invalid_scope"),
            (
                FORM,
                Some(basic),
                format!("{cc}&database_id=x&namespace=a/b"),
                "invalid_request",
            ),
            (
                FORM,
                Some(basic),
                format!("{cc}&grant_type=client_credentials"),
                "invalid_request",
            ),
            ("application/json", Some(basic), cc.to_owned(), "invalid_request"),
            (
                FORM,
                Some(basic),
                "grant_type=password".to_owned(),
                "unsupported_grant_type",
            ),
            (FORM, Some(basic), String::new(), "invalid_request"),
        ] {
            assert_eq!(
                code(TokenRequest::from_http(&request(content_type, authorization, &body))),
                want,
                "{body}"
            );
        }
    }

    #[test]
    fn reads_an_exchange() {
        let base = format!(
            "grant_type={}&subject_token=a.b.c&subject_token_type={}&resource=company:42&scope=db:read",
            TOKEN_EXCHANGE.replace(':', "%3A"),
            ACCESS_TOKEN_TYPE
        );
        let Ok(TokenRequest::Exchange(exchange)) = TokenRequest::from_http(&request(FORM, None, &base)) else {
            panic!("expected an exchange");
        };
        assert_eq!(
            (exchange.resource.as_str(), exchange.scopes.as_slice()),
            ("company:42", &["db:read".to_owned()][..])
        );
        for (extra, want) in [
            ("&actor_token=x&actor_token_type=y", "invalid_request"),
            ("&audience=x", "invalid_target"),
            (
                "&requested_token_type=urn:ietf:params:oauth:token-type:jwt",
                "invalid_request",
            ),
            (
                "&requested_token_type=urn:ietf:params:oauth:token-type:access_token",
                "ok",
            ),
        ] {
            assert_eq!(
                code(TokenRequest::from_http(&request(FORM, None, &format!("{base}{extra}")))),
                want,
                "{extra}"
            );
        }
        for missing in ["subject_token", "subject_token_type", "resource", "scope"] {
            let body: Vec<&str> = base
                .split('&')
                .filter(|p| !p.starts_with(&format!("{missing}=")))
                .collect();
            assert_eq!(
                code(TokenRequest::from_http(&request(FORM, None, &body.join("&")))),
                "invalid_request",
                "{missing}"
            );
        }
        let wrong_type = base.replace("token-type:access_token", "token-type:id_token");
        assert_eq!(
            code(TokenRequest::from_http(&request(FORM, None, &wrong_type))),
            "invalid_request"
        );
    }
}
