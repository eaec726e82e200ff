//! The scope vocabulary: keygate's own scopes plus the custom scopes a deployment declares for its own APIs.

use crate::{Config, Error};

/// keygate's own scopes.
pub const KEYGATE_SCOPES: [&str; 6] = [
    "profile:read",
    "profile:write",
    "sessions:read",
    "sessions:write",
    "tokens:read",
    "tokens:write",
];

/// Whether `scope` has the shape of a scope name: 1 to 64 of `a-z 0-9 : _ . -`.
pub fn is_well_formed(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= 64
        && scope
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":_.-".contains(&b))
}

/// Every scope this deployment knows: keygate's own, the tenancy scopes of the role table, and the custom ones.
pub fn vocabulary(config: &Config) -> impl Iterator<Item = &str> {
    KEYGATE_SCOPES
        .into_iter()
        .chain(crate::tenancy::roles::TENANCY_SCOPES)
        .chain(config.custom_scopes.iter().map(String::as_str))
}

/// The scopes of an interactive session of an account in no tenant yet (see [`crate::tenancy::roles`] for the
/// others), space-separated.
pub fn session_scope(config: &Config) -> String {
    crate::tenancy::roles::scope_claim(config, None)
}

/// Checks requested scopes against the vocabulary (422 `invalid_scope` for an unknown one) and returns them
/// sorted and without duplicates.
pub fn parse_requested(config: &Config, requested: &[String]) -> Result<Vec<String>, Error> {
    if requested.is_empty() || requested.len() > 64 {
        return Err(Error::InvalidScope("Ask for between 1 and 64 scopes.".to_owned()));
    }
    let mut scopes = Vec::with_capacity(requested.len());
    for scope in requested {
        if !vocabulary(config).any(|known| known == scope) {
            let shown = if is_well_formed(scope) {
                scope.as_str()
            } else {
                "(malformed)"
            };
            return Err(Error::InvalidScope(format!("Unknown scope {shown}.")));
        }
        scopes.push(scope.clone());
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(custom: &[&str]) -> Config {
        let vars = [
            ("KEYGATE_TABLE", "t"),
            ("KEYGATE_KEY_SECRET_ID", "s"),
            ("KEYGATE_ISSUER", "https://auth.example.com"),
            ("KEYGATE_MAIL_FROM", "a@example.com"),
            (
                "KEYGATE_MAIL_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            ),
        ];
        let mut vars: std::collections::HashMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        vars.insert("KEYGATE_CUSTOM_SCOPES".into(), custom.join(","));
        Config::from_vars(&vars).unwrap()
    }

    #[test]
    fn accepts_the_vocabulary_and_sorts() {
        let config = config(&["orders:read"]);
        let scopes = parse_requested(
            &config,
            &["tokens:read".into(), "orders:read".into(), "tokens:read".into()],
        )
        .unwrap();
        assert_eq!(scopes, vec!["orders:read", "tokens:read"]);
        assert!(session_scope(&config).ends_with("tokens:write orders:read"));
    }

    #[test]
    fn refuses_unknown_empty_and_malformed() {
        let config = config(&[]);
        assert!(matches!(
            parse_requested(&config, &["admin".into()]),
            Err(Error::InvalidScope(_))
        ));
        assert!(matches!(parse_requested(&config, &[]), Err(Error::InvalidScope(_))));
        let Err(Error::InvalidScope(message)) = parse_requested(&config, &["<script>".into()]) else {
            panic!()
        };
        assert!(!message.contains("<script>"));
    }
}
