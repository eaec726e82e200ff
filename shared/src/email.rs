//! [`Email`]: an address we can deliver to, normalised so one mailbox is one account.

use std::fmt;

use crate::Error;

/// A syntactically valid, normalised (trimmed, lower-cased) ASCII email address.
///
/// Non-ASCII addresses are refused: SES cannot send to internationalised local parts, and lookalike Unicode
/// would let two accounts share what a person reads as one address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates and normalises a user-supplied address.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let candidate = raw.trim().to_ascii_lowercase();
        if candidate.len() > 254 || !candidate.is_ascii() {
            return Err(Error::InvalidEmail);
        }
        let (local, domain) = candidate.split_once('@').ok_or(Error::InvalidEmail)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if local_ok && domain_ok {
            Ok(Self(candidate))
        } else {
            Err(Error::InvalidEmail)
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain, after the `@` (lowercase, as the whole address is).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses are personal data: logs get the domain only.
        let domain = self.0.split_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(***@{domain})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn accepts_plus_addressing() {
        assert!(Email::parse("a.b+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn rejects_malformed_and_unicode() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a@-example.com",
            "аlice@example.com", // Cyrillic а
            "alice@exämple.com",
            "a\u{0}@example.com",
            "a@b@example.com",
            "a\u{202e}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn debug_hides_the_local_part() {
        assert_eq!(
            format!("{:?}", Email::parse("alice@example.com").unwrap()),
            "Email(***@example.com)"
        );
    }
}
