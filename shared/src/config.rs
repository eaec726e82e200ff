//! Environment → typed [`Config`], read once at cold start.

use std::collections::HashMap;

/// A configuration value that is missing or cannot be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set but its value is not acceptable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything a function needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB table holding every entity (`KEYGATE_TABLE`).
    pub table_name: String,
    /// Secrets Manager secret with the JWT signing keys (`KEYGATE_KEY_SECRET_ID`); only the functions that sign
    /// read it.
    pub key_secret_id: String,
    /// Secrets Manager secret with the public key set (JWKS JSON) that the key rotation publishes and the
    /// verifying functions read (`KEYGATE_PUBLIC_KEYS_SECRET_ID`, default `<KEYGATE_KEY_SECRET_ID>-public`).
    pub public_keys_secret_id: String,
    /// Secrets Manager secret with the data key that seals TOTP secrets and hashes backup codes
    /// (`KEYGATE_MFA_KEY_SECRET_ID`, default `<KEYGATE_KEY_SECRET_ID>-mfa`); only the second-factor functions read
    /// it.
    pub mfa_key_secret_id: String,
    /// The issuer name authenticator apps show beside a TOTP entry (`KEYGATE_TOTP_ISSUER`, default `keygate`).
    pub totp_issuer: String,
    /// The WebAuthn relying party: passkeys are bound to its id for good.
    pub webauthn: WebauthnConfig,
    /// `iss` of every access token and the OpenID issuer (`KEYGATE_ISSUER`).
    pub issuer: String,
    /// `aud` of every access token (`KEYGATE_AUDIENCE`).
    pub audience: String,
    /// Access-token lifetime in seconds (`KEYGATE_ACCESS_TOKEN_TTL_SECONDS`, default 900).
    pub access_token_ttl: i64,
    /// Refresh-token lifetime in seconds, renewed on every rotation (`KEYGATE_REFRESH_TOKEN_TTL_SECONDS`, default 7 days).
    pub refresh_token_ttl: i64,
    /// A session ends this long after it started, however often it is refreshed
    /// (`KEYGATE_SESSION_MAX_LIFETIME_SECONDS`, default 30 days).
    pub session_max_lifetime: i64,
    /// How long a just-rotated refresh token is answered with a conflict instead of revoking the
    /// session (`KEYGATE_REFRESH_REUSE_GRACE_SECONDS`, default 10).
    pub refresh_reuse_grace: i64,
    /// Sender address of every email, an SES verified identity (`KEYGATE_MAIL_FROM`).
    pub mail_from: String,
    /// The outbox: the SQS queue every email goes through to the mailer function (`KEYGATE_MAIL_QUEUE_URL`).
    pub mail_queue_url: String,
    /// Public URL of the application that uses keygate, used in emails (`KEYGATE_APP_URL`).
    pub app_url: String,
    /// Whether `GET /v1/auth/check-registration` answers at all (`KEYGATE_CHECK_REGISTRATION`, default `true`).
    pub check_registration_enabled: bool,
    /// Seconds the signing keys stay cached in memory (`KEYGATE_KEY_CACHE_SECONDS`, default 300).
    pub key_cache_ttl: i64,
    /// Per-IP request limits of the unauthenticated endpoints.
    pub rate_limits: RateLimits,
    /// The proxy in front of API Gateway whose client-address header is trusted, if any.
    pub trusted_proxy: Option<TrustedProxy>,
    /// Scopes the deployment declares for its own APIs (`KEYGATE_CUSTOM_SCOPES`, comma-separated).
    pub custom_scopes: Vec<String>,
    /// Prefix of personal access tokens (`KEYGATE_PAT_PREFIX`, default `kg`: 1 to 10 of `a-z0-9`).
    pub pat_prefix: String,
    /// Exact URLs a magic link may name as `redirect_uri` (`KEYGATE_REDIRECT_ALLOWLIST`, comma-separated).
    pub redirect_allowlist: Vec<String>,
    /// Whether new passwords are checked against a breach corpus (`KEYGATE_BREACHED_PASSWORD_CHECK`, `off` or
    /// `hibp`, default `off`).
    pub breached_password_check: BreachedPasswordCheck,
    /// Base URL of a Pwned Passwords range API, ending in `/`: the 5-character hash prefix is appended to it
    /// (`KEYGATE_HIBP_URL`, default [`DEFAULT_HIBP_URL`]). HTTPS, or plain HTTP to a loopback host only.
    pub hibp_url: String,
    /// How many BatchWriteItem calls (of up to 25 deletes) one `DELETE /v1/accounts/{id}` request spends before it
    /// answers 202 and leaves the rest to the next call (`KEYGATE_ACCOUNT_DELETE_BATCHES`, default 40, 1 to 400).
    pub account_delete_batches: i64,
    /// Whether a service account's PAT may be made without an expiry (`KEYGATE_M2M_PERMANENT_TOKENS`, default
    /// `false`, so the 365-day cap holds unless a deployment chooses otherwise).
    pub m2m_permanent_tokens: bool,
    /// Resource types a scoped token or an exchanged token may name, as in `<type>:<id>`
    /// (`KEYGATE_SCOPED_TOKEN_RESOURCES`, comma-separated; empty turns both off).
    pub scoped_token_resources: Vec<String>,
    /// The read-only scopes a deployment allows for anonymous use through scoped and exchanged tokens
    /// (`KEYGATE_SCOPED_TOKEN_SCOPES`, comma-separated).
    pub scoped_token_scopes: Vec<String>,
    /// Prefix of scoped tokens (`KEYGATE_SCOPED_TOKEN_PREFIX`, default `<KEYGATE_PAT_PREFIX>s`: 1 to 10 of
    /// `a-z0-9`, never the PAT prefix), so that one is never mistaken for a PAT.
    pub scoped_token_prefix: String,
    /// Secrets Manager secret with the identity-provider configuration document, `{"idps": [...]}`
    /// (`KEYGATE_IDP_SECRET_ID`, default `<KEYGATE_KEY_SECRET_ID>-idp`); empty or missing means no IdP.
    pub idp_secret_id: String,
    /// Seconds the IdP configuration stays cached (`KEYGATE_IDP_CACHE_SECONDS`, default 300).
    pub idp_cache_ttl: i64,
    /// Audiences (OAuth client ids) a Google ID token may name (`KEYGATE_GOOGLE_CLIENT_IDS`, comma-separated; empty
    /// turns Google sign-in off).
    pub google_client_ids: Vec<String>,
    /// Google's JWKS (`KEYGATE_GOOGLE_JWKS_URL`, default [`GOOGLE_JWKS_URL`]); tests point it at a local issuer.
    pub google_jwks_url: String,
    /// Seconds a security event is kept (`KEYGATE_EVENT_RETENTION_DAYS`, default 90, 1 to 3,650 days).
    pub event_retention: i64,
    /// Whether a sign-in from a device and network not seen in the account's recent sessions is mailed to its
    /// owner (`KEYGATE_NOTIFY_NEW_DEVICE`, default true).
    pub notify_new_device: bool,
    /// SES configuration set every mail is sent with (`KEYGATE_SES_CONFIGURATION_SET`; empty sends without one).
    pub ses_configuration_set: Option<String>,
    /// CloudWatch namespace of the metrics (`KEYGATE_METRICS_NAMESPACE`, default `keygate`).
    pub metrics_namespace: String,
}

/// Google's published signing keys.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The public Pwned Passwords range endpoint.
pub const DEFAULT_HIBP_URL: &str = "https://api.pwnedpasswords.com/range/";

/// Which breach corpus new passwords are checked against, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreachedPasswordCheck {
    /// No check (the default): nothing leaves the function.
    Off,
    /// The Pwned Passwords k-anonymity range API at [`Config::hibp_url`].
    Hibp,
}

/// A proxy (CloudFront with the WAF) that tells the client's address in a header. Its word counts only on
/// requests that also carry the shared secret it adds, so a caller who goes around it to API Gateway cannot
/// choose its own address.
#[derive(Debug, Clone)]
pub struct TrustedProxy {
    /// Header holding the client's `ip:port` (`KEYGATE_CLIENT_IP_HEADER`, e.g. `cloudfront-viewer-address`).
    pub ip_header: String,
    /// Value of `x-keygate-origin-verify` the proxy adds (`KEYGATE_ORIGIN_VERIFY_SECRET`, at least 32 bytes).
    pub secret: secrecy::SecretString,
}

/// Requests allowed per client IP per minute, by endpoint group (`KEYGATE_RATE_LIMIT_*`).
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Login, code verification and password reset (`KEYGATE_RATE_LIMIT_VERIFY_PER_MINUTE`, default 10).
    pub verify_per_minute: u32,
    /// Endpoints that send email (`KEYGATE_RATE_LIMIT_SEND_PER_MINUTE`, default 5).
    pub send_per_minute: u32,
    /// `check-registration`, which reveals whether an account exists (`KEYGATE_RATE_LIMIT_LOOKUP_PER_MINUTE`, default 3).
    pub lookup_per_minute: u32,
    /// Token refresh and logout (`KEYGATE_RATE_LIMIT_REFRESH_PER_MINUTE`, default 60).
    pub refresh_per_minute: u32,
    /// At least this many seconds between two emails of one kind to one address (`KEYGATE_MAIL_INTERVAL_SECONDS`,
    /// default 30; 0 turns the spacing off and leaves the hourly budgets).
    pub mail_interval_seconds: u32,
    /// Emails that carry a code or a link, per address per hour (`KEYGATE_MAIL_PER_HOUR`, default 5).
    pub mail_per_hour: u32,
    /// Notices that carry no code ("you already have an account"), per address per hour: a budget of their own,
    /// so they cannot starve the owner's reset mail (`KEYGATE_NOTICES_PER_HOUR`, default 2).
    pub notices_per_hour: u32,
    /// Wrong code guesses per address and purpose per 24 hours, across re-sent codes
    /// (`KEYGATE_CODE_GUESSES_PER_DAY`, default 10).
    pub code_guesses_per_day: u32,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the given variables; the same rules as [`Config::from_env`], for tests.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| vars.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).map(str::to_owned).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: i64, min: i64, max: i64| -> Result<i64, ConfigError> {
            let Some(raw) = get(name) else { return Ok(default) };
            let value: i64 = raw.parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("{raw:?} is not a whole number"),
            })?;
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::Invalid {
                    name,
                    reason: format!("must be between {min} and {max}"),
                })
            }
        };
        let per_minute = |name: &'static str, default: i64| -> Result<u32, ConfigError> {
            number(name, default, 1, 100_000).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
        };
        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some("true" | "1" | "enabled") => Ok(true),
                Some("false" | "0" | "disabled") => Ok(false),
                Some(other) => Err(ConfigError::Invalid {
                    name,
                    reason: format!("{other:?} is not true or false"),
                }),
            }
        };

        let issuer = required("KEYGATE_ISSUER")?;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "KEYGATE_ISSUER",
                reason: "must be an http(s) URL".into(),
            });
        }
        let custom_scopes: Vec<String> = get("KEYGATE_CUSTOM_SCOPES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = custom_scopes.iter().find(|s| !crate::scopes::is_well_formed(s)) {
            return Err(ConfigError::Invalid {
                name: "KEYGATE_CUSTOM_SCOPES",
                reason: format!("{bad:?} is not a scope name"),
            });
        }
        let pat_prefix = get("KEYGATE_PAT_PREFIX").unwrap_or("kg").to_owned();
        if pat_prefix.is_empty()
            || pat_prefix.len() > 10
            || !pat_prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(ConfigError::Invalid {
                name: "KEYGATE_PAT_PREFIX",
                reason: "1 to 10 of a-z0-9".into(),
            });
        }
        let list = |name: &'static str| -> Result<Vec<String>, ConfigError> {
            let items: Vec<String> = get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            match items.iter().find(|s| !crate::scopes::is_well_formed(s)) {
                Some(bad) => Err(ConfigError::Invalid {
                    name,
                    reason: format!("{bad:?} is not a scope or resource type name"),
                }),
                None => Ok(items),
            }
        };
        let scoped_token_resources = list("KEYGATE_SCOPED_TOKEN_RESOURCES")?;
        if let Some(bad) = scoped_token_resources.iter().find(|r| r.contains(':')) {
            return Err(ConfigError::Invalid {
                name: "KEYGATE_SCOPED_TOKEN_RESOURCES",
                reason: format!("{bad:?}: a resource type has no colon"),
            });
        }
        let scoped_token_scopes = list("KEYGATE_SCOPED_TOKEN_SCOPES")?;
        let scoped_token_prefix =
            get("KEYGATE_SCOPED_TOKEN_PREFIX").map_or_else(|| format!("{pat_prefix}s"), str::to_owned);
        if scoped_token_prefix == pat_prefix
            || scoped_token_prefix.is_empty()
            || scoped_token_prefix.len() > 10
            || !scoped_token_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(ConfigError::Invalid {
                name: "KEYGATE_SCOPED_TOKEN_PREFIX",
                reason: "1 to 10 of a-z0-9, other than the PAT prefix".into(),
            });
        }
        let breached_password_check = match get("KEYGATE_BREACHED_PASSWORD_CHECK") {
            None | Some("off") => BreachedPasswordCheck::Off,
            Some("hibp") => BreachedPasswordCheck::Hibp,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "KEYGATE_BREACHED_PASSWORD_CHECK",
                    reason: format!("{other:?} is not off or hibp"),
                })
            }
        };
        let hibp_url =
            hibp_url(get("KEYGATE_HIBP_URL").unwrap_or(DEFAULT_HIBP_URL)).map_err(|reason| ConfigError::Invalid {
                name: "KEYGATE_HIBP_URL",
                reason: reason.into(),
            })?;
        let key_secret_id = required("KEYGATE_KEY_SECRET_ID")?;
        let app_url = get("KEYGATE_APP_URL")
            .unwrap_or("http://localhost:5173")
            .trim_end_matches('/')
            .to_owned();
        let totp_issuer = get("KEYGATE_TOTP_ISSUER").unwrap_or("keygate").trim().to_owned();
        if totp_issuer.is_empty() || totp_issuer.contains(':') || totp_issuer.chars().count() > 64 {
            return Err(ConfigError::Invalid {
                name: "KEYGATE_TOTP_ISSUER",
                reason: "an issuer is 1 to 64 characters without a colon".into(),
            });
        }
        Ok(Self {
            mfa_key_secret_id: get("KEYGATE_MFA_KEY_SECRET_ID")
                .map_or_else(|| format!("{key_secret_id}-mfa"), str::to_owned),
            totp_issuer,
            custom_scopes,
            pat_prefix,
            breached_password_check,
            hibp_url,
            table_name: required("KEYGATE_TABLE")?,
            idp_secret_id: get("KEYGATE_IDP_SECRET_ID").map_or_else(|| format!("{key_secret_id}-idp"), str::to_owned),
            public_keys_secret_id: get("KEYGATE_PUBLIC_KEYS_SECRET_ID")
                .map_or_else(|| format!("{key_secret_id}-public"), str::to_owned),
            key_secret_id,
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: get("KEYGATE_AUDIENCE").unwrap_or("keygate").to_owned(),
            access_token_ttl: number("KEYGATE_ACCESS_TOKEN_TTL_SECONDS", 900, 60, 86_400)?,
            refresh_token_ttl: number("KEYGATE_REFRESH_TOKEN_TTL_SECONDS", 7 * 86_400, 300, 90 * 86_400)?,
            refresh_reuse_grace: number("KEYGATE_REFRESH_REUSE_GRACE_SECONDS", 10, 0, 60)?,
            session_max_lifetime: number("KEYGATE_SESSION_MAX_LIFETIME_SECONDS", 30 * 86_400, 300, 365 * 86_400)?,
            mail_from: required("KEYGATE_MAIL_FROM")?,
            mail_queue_url: required("KEYGATE_MAIL_QUEUE_URL")?,
            app_url: app_url.clone(),
            check_registration_enabled: flag("KEYGATE_CHECK_REGISTRATION", true)?,
            key_cache_ttl: number("KEYGATE_KEY_CACHE_SECONDS", 300, 0, 3_600)?,
            account_delete_batches: number("KEYGATE_ACCOUNT_DELETE_BATCHES", 40, 1, 400)?,
            m2m_permanent_tokens: flag("KEYGATE_M2M_PERMANENT_TOKENS", false)?,
            idp_cache_ttl: number("KEYGATE_IDP_CACHE_SECONDS", 300, 0, 3_600)?,
            google_client_ids: get("KEYGATE_GOOGLE_CLIENT_IDS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
            google_jwks_url: get("KEYGATE_GOOGLE_JWKS_URL").unwrap_or(GOOGLE_JWKS_URL).to_owned(),
            event_retention: number("KEYGATE_EVENT_RETENTION_DAYS", 90, 1, 3_650)? * 86_400,
            notify_new_device: flag("KEYGATE_NOTIFY_NEW_DEVICE", true)?,
            ses_configuration_set: get("KEYGATE_SES_CONFIGURATION_SET").map(str::to_owned),
            metrics_namespace: get("KEYGATE_METRICS_NAMESPACE").unwrap_or("keygate").to_owned(),
            scoped_token_resources,
            scoped_token_scopes,
            scoped_token_prefix,
            rate_limits: RateLimits {
                verify_per_minute: per_minute("KEYGATE_RATE_LIMIT_VERIFY_PER_MINUTE", 10)?,
                send_per_minute: per_minute("KEYGATE_RATE_LIMIT_SEND_PER_MINUTE", 5)?,
                lookup_per_minute: per_minute("KEYGATE_RATE_LIMIT_LOOKUP_PER_MINUTE", 3)?,
                refresh_per_minute: per_minute("KEYGATE_RATE_LIMIT_REFRESH_PER_MINUTE", 60)?,
                mail_interval_seconds: number("KEYGATE_MAIL_INTERVAL_SECONDS", 30, 0, 100_000)
                    .map(|v| u32::try_from(v).unwrap_or(u32::MAX))?,
                mail_per_hour: per_minute("KEYGATE_MAIL_PER_HOUR", 5)?,
                notices_per_hour: per_minute("KEYGATE_NOTICES_PER_HOUR", 2)?,
                code_guesses_per_day: per_minute("KEYGATE_CODE_GUESSES_PER_DAY", 10)?,
            },
            trusted_proxy: match (get("KEYGATE_CLIENT_IP_HEADER"), get("KEYGATE_ORIGIN_VERIFY_SECRET")) {
                (None, _) => None,
                (Some(header), Some(secret)) if secret.len() >= 32 => Some(TrustedProxy {
                    ip_header: header.to_ascii_lowercase(),
                    secret: secrecy::SecretString::from(secret),
                }),
                (Some(_), _) => {
                    return Err(ConfigError::Invalid {
                        name: "KEYGATE_ORIGIN_VERIFY_SECRET",
                        reason: "must be at least 32 characters when KEYGATE_CLIENT_IP_HEADER is set".into(),
                    })
                }
            },
            webauthn: WebauthnConfig::from_vars(&get, &app_url)?,
            redirect_allowlist: get("KEYGATE_REDIRECT_ALLOWLIST")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// The WebAuthn relying party (`KEYGATE_WEBAUTHN_RP_ID`, default the host of `KEYGATE_APP_URL`;
/// `KEYGATE_WEBAUTHN_RP_NAME`, default `keygate`; `KEYGATE_WEBAUTHN_ORIGINS`, comma-separated, default
/// `KEYGATE_APP_URL`). Checked at load: every origin must be the RP id's host or a subdomain of it.
#[derive(Debug, Clone)]
pub struct WebauthnConfig {
    /// The RP id, a registrable domain.
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// Origins a ceremony may come from (scheme, host and port).
    pub origins: Vec<webauthn_rs::prelude::Url>,
}

impl WebauthnConfig {
    fn from_vars<'a>(get: &impl Fn(&'static str) -> Option<&'a str>, app_url: &str) -> Result<Self, ConfigError> {
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let origins: Vec<webauthn_rs::prelude::Url> = get("KEYGATE_WEBAUTHN_ORIGINS")
            .unwrap_or(app_url)
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                webauthn_rs::prelude::Url::parse(o)
                    .map_err(|_| invalid("KEYGATE_WEBAUTHN_ORIGINS", format!("{o:?} is not a URL")))
            })
            .collect::<Result<_, _>>()?;
        let first = origins
            .first()
            .ok_or_else(|| invalid("KEYGATE_WEBAUTHN_ORIGINS", "names no origin".into()))?;
        let rp_id = match get("KEYGATE_WEBAUTHN_RP_ID") {
            Some(id) => id.trim().to_owned(),
            None => first.host_str().unwrap_or_default().to_owned(),
        };
        for origin in &origins {
            let host = origin.host_str().unwrap_or_default();
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(invalid(
                    "KEYGATE_WEBAUTHN_ORIGINS",
                    format!("{origin} is not on the relying party {rp_id:?} or a subdomain of it"),
                ));
            }
        }
        let rp_name = get("KEYGATE_WEBAUTHN_RP_NAME").unwrap_or("keygate").trim().to_owned();
        if rp_name.is_empty() {
            return Err(invalid("KEYGATE_WEBAUTHN_RP_NAME", "is empty".into()));
        }
        let config = Self {
            rp_id,
            rp_name,
            origins,
        };
        config
            .relying_party()
            .map_err(|err| invalid("KEYGATE_WEBAUTHN_RP_ID", format!("{err}")))?;
        Ok(config)
    }

    /// The webauthn-rs relying party. Cheap: it parses nothing that was not checked at load.
    pub fn relying_party(&self) -> Result<webauthn_rs::Webauthn, webauthn_rs::prelude::WebauthnError> {
        let Some(first) = self.origins.first() else {
            return Err(webauthn_rs::prelude::WebauthnError::Configuration);
        };
        let mut builder = webauthn_rs::WebauthnBuilder::new(&self.rp_id, first)?.rp_name(&self.rp_name);
        for origin in &self.origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        builder.build()
    }
}

/// A range API base URL, normalised to end in `/`. Plain HTTP only to a loopback host: on the open network a
/// tampered answer could pass breached passwords or fail every new one.
fn hibp_url(raw: &str) -> Result<String, &'static str> {
    let url = if raw.ends_with('/') {
        raw.to_owned()
    } else {
        format!("{raw}/")
    };
    let uri: hyper::Uri = url.parse().map_err(|_| "not a URL")?;
    if uri.query().is_some() || url.contains('#') {
        return Err("must not have a query or a fragment");
    }
    let host = uri.host().ok_or("must name a host")?;
    match uri.scheme_str() {
        Some("https") => Ok(url),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]") => Ok(url),
        Some("http") => Err("plain http is allowed to a loopback host only; use https"),
        _ => Err("must be an https URL"),
    }
}

impl Config {
    /// Whether a `redirect_uri` is on the allow-list. Exact match only: prefix or pattern matching is how open
    /// redirects slip through (`https://app.example.com.evil.test`).
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        self.redirect_allowlist.iter().any(|allowed| allowed == uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("KEYGATE_TABLE", "t"),
            ("KEYGATE_KEY_SECRET_ID", "s"),
            ("KEYGATE_ISSUER", "https://auth.example.com/"),
            ("KEYGATE_MAIL_FROM", "no-reply@example.com"),
            (
                "KEYGATE_MAIL_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/keygate-mail",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn defaults_apply() {
        let config = Config::from_vars(&base()).unwrap();
        assert_eq!(config.access_token_ttl, 900);
        assert_eq!(config.refresh_token_ttl, 604_800);
        assert_eq!(config.session_max_lifetime, 30 * 86_400);
        assert_eq!(config.rate_limits.code_guesses_per_day, 10);
        assert!(config.rate_limits.notices_per_hour < config.rate_limits.mail_per_hour);
        assert_eq!(config.issuer, "https://auth.example.com");
        assert!(config.check_registration_enabled);
        assert_eq!(config.public_keys_secret_id, "s-public");
        assert_eq!(config.mfa_key_secret_id, "s-mfa");
        assert_eq!(config.totp_issuer, "keygate");
    }

    #[test]
    fn the_mail_spacing_can_be_turned_off_but_not_made_negative() {
        let mut vars = base();
        vars.insert("KEYGATE_MAIL_INTERVAL_SECONDS".into(), "0".into());
        assert_eq!(Config::from_vars(&vars).unwrap().rate_limits.mail_interval_seconds, 0);
        vars.insert("KEYGATE_MAIL_INTERVAL_SECONDS".into(), "-1".into());
        assert!(matches!(Config::from_vars(&vars), Err(ConfigError::Invalid { .. })));
        assert_eq!(
            Config::from_vars(&base()).unwrap().rate_limits.mail_interval_seconds,
            30
        );
    }

    #[test]
    fn the_totp_issuer_cannot_break_the_otpauth_label() {
        let mut vars = base();
        vars.insert("KEYGATE_TOTP_ISSUER".into(), "Acme:Prod".into());
        assert!(Config::from_vars(&vars).is_err());
        vars.insert("KEYGATE_TOTP_ISSUER".into(), "Acme Prod".into());
        assert_eq!(Config::from_vars(&vars).unwrap().totp_issuer, "Acme Prod");
    }

    #[test]
    fn the_public_key_secret_can_be_named() {
        let mut vars = base();
        vars.insert("KEYGATE_PUBLIC_KEYS_SECRET_ID".into(), "keys/public".into());
        assert_eq!(Config::from_vars(&vars).unwrap().public_keys_secret_id, "keys/public");
    }

    #[test]
    fn rejects_out_of_range_and_missing() {
        let mut vars = base();
        vars.insert("KEYGATE_ACCESS_TOKEN_TTL_SECONDS".into(), "5".into());
        assert!(matches!(Config::from_vars(&vars), Err(ConfigError::Invalid { .. })));
        let mut vars = base();
        vars.remove("KEYGATE_TABLE");
        assert!(matches!(
            Config::from_vars(&vars),
            Err(ConfigError::Missing("KEYGATE_TABLE"))
        ));
        let mut vars = base();
        vars.remove("KEYGATE_MAIL_QUEUE_URL");
        assert!(matches!(
            Config::from_vars(&vars),
            Err(ConfigError::Missing("KEYGATE_MAIL_QUEUE_URL"))
        ));
    }

    #[test]
    fn redirects_match_the_allow_list_exactly() {
        let mut vars = base();
        vars.insert(
            "KEYGATE_REDIRECT_ALLOWLIST".into(),
            "https://app.example.com/home, https://app.example.com/x".into(),
        );
        let config = Config::from_vars(&vars).unwrap();
        assert!(config.redirect_allowed("https://app.example.com/home"));
        assert!(config.redirect_allowed("https://app.example.com/x"));
        for bad in [
            "https://app.example.com/home.evil.test",
            "https://app.example.com/home/../../evil",
            "https://app.example.com.evil.test/home",
            "//evil.test",
            "",
        ] {
            assert!(!config.redirect_allowed(bad), "{bad}");
        }
        assert!(!Config::from_vars(&base())
            .unwrap()
            .redirect_allowed("https://app.example.com/home"));
    }

    #[test]
    fn breached_password_check_is_off_by_default_and_points_at_pwned_passwords() {
        let config = Config::from_vars(&base()).unwrap();
        assert_eq!(config.breached_password_check, BreachedPasswordCheck::Off);
        assert_eq!(config.hibp_url, "https://api.pwnedpasswords.com/range/");
        let mut vars = base();
        vars.insert("KEYGATE_BREACHED_PASSWORD_CHECK".into(), "hibp".into());
        vars.insert(
            "KEYGATE_HIBP_URL".into(),
            "https://hibp.internal.example.com/range".into(),
        );
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(config.breached_password_check, BreachedPasswordCheck::Hibp);
        assert_eq!(config.hibp_url, "https://hibp.internal.example.com/range/");
        vars.insert("KEYGATE_BREACHED_PASSWORD_CHECK".into(), "off".into());
        assert_eq!(
            Config::from_vars(&vars).unwrap().breached_password_check,
            BreachedPasswordCheck::Off
        );
    }

    #[test]
    fn breached_password_check_rejects_unknown_modes_and_unsafe_urls() {
        for mode in ["on", "true", "HIBP", "pwned"] {
            let mut vars = base();
            vars.insert("KEYGATE_BREACHED_PASSWORD_CHECK".into(), mode.into());
            assert!(
                matches!(
                    Config::from_vars(&vars),
                    Err(ConfigError::Invalid {
                        name: "KEYGATE_BREACHED_PASSWORD_CHECK",
                        ..
                    })
                ),
                "{mode}"
            );
        }
        for url in [
            "http://api.pwnedpasswords.com/range/",
            "http://10.0.0.1/range/",
            "http://localhost.evil.test/range/",
            "ftp://api.pwnedpasswords.com/range/",
            "api.pwnedpasswords.com/range/",
            "https://api.pwnedpasswords.com/range/?x=1",
            "https://api.pwnedpasswords.com/range/#x",
            "https:///range/",
            "not a url",
        ] {
            let mut vars = base();
            vars.insert("KEYGATE_HIBP_URL".into(), url.into());
            assert!(
                matches!(
                    Config::from_vars(&vars),
                    Err(ConfigError::Invalid {
                        name: "KEYGATE_HIBP_URL",
                        ..
                    })
                ),
                "{url}"
            );
        }
        for url in [
            "http://127.0.0.1:8080/range/",
            "http://localhost:8080/range",
            "http://[::1]:1/r/",
        ] {
            let mut vars = base();
            vars.insert("KEYGATE_HIBP_URL".into(), url.into());
            assert!(Config::from_vars(&vars).unwrap().hibp_url.ends_with('/'), "{url}");
        }
    }

    #[test]
    fn allows_day_long_access_tokens() {
        let mut vars = base();
        vars.insert("KEYGATE_ACCESS_TOKEN_TTL_SECONDS".into(), "86400".into());
        vars.insert("KEYGATE_CHECK_REGISTRATION".into(), "false".into());
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(config.access_token_ttl, 86_400);
        assert!(!config.check_registration_enabled);
    }
}
