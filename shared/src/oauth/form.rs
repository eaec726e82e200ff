//! The wire forms of the token endpoint: an `application/x-www-form-urlencoded` body (RFC 6749 Appendix B) and
//! HTTP Basic client authentication (RFC 6749 §2.3.1), parsed strictly, so that no input can do more than refuse.

use base64::Engine as _;
use secrecy::SecretString;

use super::OAuthError;
use crate::http::MAX_BODY_BYTES;

/// A parsed form body: each parameter at most once (RFC 6749 §3.2), an empty value read as absent (§3.1).
#[derive(Debug, Default)]
pub struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    /// Parses a form body: at most [`MAX_BODY_BYTES`], valid percent-escapes, UTF-8 once decoded, no parameter
    /// given twice. Each is `invalid_request`.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        Self::parse_where(body, |_| true)
    }

    /// [`Form::parse`] for an endpoint that knows its parameters: every parameter not in `known` is dropped,
    /// however often it is given, as RFC 6749 §3.2 requires of unrecognized ones.
    pub fn parse_known(body: &[u8], known: &[&str]) -> Result<Self, OAuthError> {
        Self::parse_where(body, |name| known.contains(&name))
    }

    fn parse_where(body: &[u8], keep: impl Fn(&str) -> bool) -> Result<Self, OAuthError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(OAuthError::InvalidRequest(format!(
                "The request body is larger than {MAX_BODY_BYTES} bytes."
            )));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let (name, value) = (decode(name)?, decode(value)?);
            if value.is_empty() || !keep(&name) {
                continue;
            }
            if params.iter().any(|(seen, _)| *seen == name) {
                return Err(OAuthError::InvalidRequest(format!(
                    "The parameter {} is given more than once.",
                    printable(&name)
                )));
            }
            params.push((name, value));
        }
        Ok(Self { params })
    }

    /// One parameter's value, when given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(seen, _)| seen == name)
            .map(|(_, value)| value.as_str())
    }

    /// A required parameter (`invalid_request` when missing).
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("The parameter {name} is required.")))
    }

    /// Takes a parameter out, so that a secret is moved rather than copied.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let at = self.params.iter().position(|(seen, _)| seen == name)?;
        Some(self.params.swap_remove(at).1)
    }
}

/// Decodes one form-urlencoded component: `+` is a space, `%XX` a byte, and the result must be UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    const BAD: &str = "The request body is not a valid application/x-www-form-urlencoded form.";
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.iter();
    while let Some(&b) = rest.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let (Some(high), Some(low)) = (rest.next().and_then(hex), rest.next().and_then(hex)) else {
                    return Err(OAuthError::InvalidRequest(BAD.to_owned()));
                };
                bytes.push(high << 4 | low);
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|_| OAuthError::InvalidRequest(BAD.to_owned()))
}

fn hex(b: &u8) -> Option<u8> {
    char::from(*b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// A parameter name safe to quote back: printable ASCII, at most 40 characters.
fn printable(name: &str) -> String {
    if name.len() <= 40 && name.bytes().all(|b| b.is_ascii_graphic()) {
        name.to_owned()
    } else {
        "(unnamed)".to_owned()
    }
}

/// The credentials of an `Authorization: Basic` header value (RFC 7617), each form-urlencoded before the base64
/// (RFC 6749 §2.3.1). `None` when the scheme is not Basic; `invalid_client` when it is but does not decode.
pub fn basic_credentials(header: &str) -> Option<Result<(String, SecretString), OAuthError>> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(decode_basic(encoded.trim()))
}

fn decode_basic(encoded: &str) -> Result<(String, SecretString), OAuthError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| OAuthError::InvalidClient)?;
    let at = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or(OAuthError::InvalidClient)?;
    let id = decode(&decoded[..at]).map_err(|_| OAuthError::InvalidClient)?;
    let secret = decode(&decoded[at + 1..]).map_err(|_| OAuthError::InvalidClient)?;
    if id.is_empty() || secret.is_empty() {
        return Err(OAuthError::InvalidClient);
    }
    Ok((id, SecretString::from(secret)))
}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded` (any parameters, any case).
pub fn is_form_content_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn basic(raw: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    #[test]
    fn parses_a_form() {
        let form = Form::parse(b"grant_type=client_credentials&scope=db%3Aread+db%3Awrite&empty=&flag").unwrap();
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        assert_eq!(form.get("scope"), Some("db:read db:write"));
        assert_eq!(form.get("empty"), None, "an empty value is as if omitted");
        assert_eq!(form.get("flag"), None);
        assert_eq!(form.get("missing"), None);
        assert!(form.require("missing").is_err());
        let form = Form::parse("name=caf%C3%A9%20%2B%26%3D".as_bytes()).unwrap();
        assert_eq!(form.get("name"), Some("café +&="));
        assert!(Form::parse(b"").unwrap().get("x").is_none());
        assert!(Form::parse(b"&&a=1&&").unwrap().get("a") == Some("1"));
    }

    #[test]
    fn refuses_bad_forms() {
        for bad in [
            &b"a=1&a=2"[..],
            b"a=%",
            b"a=%4",
            b"a=%zz",
            b"a=%C3%28",
            b"a=\xff",
            b"%ff=1",
        ] {
            assert!(
                matches!(Form::parse(bad), Err(OAuthError::InvalidRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!("a={}", "b".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            Form::parse(big.as_bytes()),
            Err(OAuthError::InvalidRequest(_))
        ));
        // A repeated empty parameter is no parameter at all.
        assert!(Form::parse(b"a=&a=1").is_ok());
    }

    #[test]
    fn repeated_names_are_not_echoed_unless_plain() {
        let Err(OAuthError::InvalidRequest(message)) = Form::parse("<script>=1&<script>=2".as_bytes()) else {
            panic!("expected invalid_request");
        };
        assert!(message.contains("<script>"), "printable ASCII is quoted: {message}");
        let Err(OAuthError::InvalidRequest(message)) = Form::parse(b"a%0Ab=1&a%0Ab=2") else {
            panic!("expected invalid_request");
        };
        assert!(!message.contains('\n'));
    }

    #[test]
    fn a_known_list_ignores_every_other_parameter_however_often_given() {
        let known = ["a", "scope"];
        let form = Form::parse_known(b"x=1&x=2&%3Cscript%3E=1&%3Cscript%3E=2&a=3", &known).unwrap();
        assert_eq!(
            (form.get("a"), form.get("x"), form.get("<script>")),
            (Some("3"), None, None)
        );
        let Err(OAuthError::InvalidRequest(message)) = Form::parse_known(b"scope=a&x=1&scope=b", &known) else {
            panic!("expected invalid_request");
        };
        assert_eq!(message, "The parameter scope is given more than once.");
        // A body that does not decode is refused whichever parameter holds the bad escape.
        assert!(Form::parse_known(b"a=1&x=%zz", &known).is_err());
    }

    #[test]
    fn takes_secrets_out() {
        let mut form = Form::parse(b"client_secret=s3cret&client_id=x").unwrap();
        assert_eq!(form.take("client_secret").as_deref(), Some("s3cret"));
        assert_eq!(form.get("client_secret"), None);
        assert_eq!(form.get("client_id"), Some("x"));
    }

    #[test]
    fn decodes_basic_credentials() {
        let (id, secret) = basic_credentials(&basic("client:secret")).unwrap().unwrap();
        assert_eq!((id.as_str(), secret.expose_secret()), ("client", "secret"));
        // Percent-encoded before the base64, so either may hold a colon; `+` is a space.
        let (id, secret) = basic_credentials(&basic("a%3Ab:p%3Ass+w%25rd%C3%A9")).unwrap().unwrap();
        assert_eq!((id.as_str(), secret.expose_secret()), ("a:b", "p:ss w%rdé"));
        // Only the first raw colon separates: the secret may hold more.
        let (_, secret) = basic_credentials(&basic("id:a:b")).unwrap().unwrap();
        assert_eq!(secret.expose_secret(), "a:b");
        let lower = format!("basic  {}", base64::engine::general_purpose::STANDARD.encode("i:s"));
        assert!(basic_credentials(&lower).unwrap().is_ok());
        assert!(basic_credentials("Bearer abc").is_none());
        assert!(basic_credentials("Basic").is_none());
    }

    #[test]
    fn refuses_bad_basic_credentials() {
        for bad in [
            "Basic !!!notbase64".to_owned(),
            "Basic Y2xpZW50".to_owned(), // "client": no colon
            basic(":secret"),
            basic("client:"),
            basic("client:%zz"),
            basic("cli%ent:secret"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(b"id:\xff\xfe")
            ),
            "Basic Y2xpZW50OnNlY3JldA".to_owned(), // unpadded
        ] {
            assert!(
                matches!(basic_credentials(&bad), Some(Err(OAuthError::InvalidClient))),
                "{bad}"
            );
        }
    }

    #[test]
    fn recognises_the_form_content_type() {
        assert!(is_form_content_type("application/x-www-form-urlencoded"));
        assert!(is_form_content_type("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!is_form_content_type("application/json"));
        assert!(!is_form_content_type("multipart/form-data"));
        assert!(!is_form_content_type(""));
    }
}
