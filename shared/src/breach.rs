//! The optional breached-password check against Pwned Passwords' k-anonymity range API
//! (`KEYGATE_BREACHED_PASSWORD_CHECK=hibp`). Only the first five hex characters of the password's SHA-1 leave
//! the function; the API answers with every known suffix under that prefix, and the match happens here.
//!
//! The check fails open: when the API is slow, down or answers nonsense, the password is let through, a warning
//! is logged with `metric = "hibp_unavailable"` (a CloudWatch metric filter counts it), and the caller gets
//! [`Breach::Unknown`]. An outage of a third-party API must not stop people from signing up or logging in.

use std::time::Duration;

use secrecy::zeroize::Zeroize as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha1::{Digest as _, Sha1};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

use crate::config::{BreachedPasswordCheck, Config};
use crate::https::{FetchError, Fetcher};

/// How long one check may take, connecting included, before the password is let through unchecked.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Hex characters of the SHA-1 sent to the API; the other 35 never leave the function.
pub const PREFIX_LEN: usize = 5;

/// The log field value that counts an unavailable API.
pub const UNAVAILABLE_METRIC: &str = "hibp_unavailable";

/// What a check found out about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// The password appears in the corpus, this many times.
    Found(u64),
    /// The corpus does not have it.
    NotFound,
    /// Nobody knows: the check is off, or the API failed (logged and counted).
    Unknown,
}

/// The range-API client, built once per process. Building it does no I/O; the HTTP client, and for HTTPS the
/// trusted roots, are made at the first check, so functions that never check a password never pay for them.
pub struct BreachChecker {
    /// The range URL ending in `/`, or `None` when the check is off.
    base: Option<String>,
    /// The shared HTTPS client (answers of at most 256 KiB: a padded range holds 800 to 1,000 lines of about 40
    /// bytes), built at the first check.
    fetcher: Fetcher,
}

/// Why a check could not tell. Each names a kind of failure and nothing about the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Failure {
    #[error("no HTTP client (trusted roots unavailable)")]
    NoClient,
    #[error("bad range URL")]
    Url,
    #[error("timed out")]
    Timeout,
    #[error("could not connect")]
    Connect,
    #[error("request failed")]
    Request,
    #[error("answered status {0}")]
    Status(u16),
    #[error("answer unreadable or too large")]
    Body,
    #[error("answer is not a range")]
    Malformed,
}

impl BreachChecker {
    /// A checker for the configured mode. Makes no network call and reads no file.
    pub fn new(config: &Config) -> Self {
        let base = match config.breached_password_check {
            BreachedPasswordCheck::Off => None,
            BreachedPasswordCheck::Hibp => Some(config.hibp_url.clone()),
        };
        Self {
            base,
            fetcher: Fetcher::default(),
        }
    }

    /// Whether checks ask the API at all.
    pub fn is_enabled(&self) -> bool {
        self.base.is_some()
    }

    /// Looks the password up in the corpus. Sends only the first five hex characters of its SHA-1, and takes
    /// at most [`TIMEOUT`]. A failure is logged and counted, and answers [`Breach::Unknown`].
    pub async fn check(&self, password: &SecretString) -> Breach {
        let Some(base) = &self.base else {
            return Breach::Unknown;
        };
        let hash = sha1_upper_hex(password);
        let (prefix, suffix) = hash.expose_secret().split_at(PREFIX_LEN);
        let outcome = match tokio::time::timeout(TIMEOUT, self.fetch_range(base, prefix)).await {
            Ok(Ok(body)) => count_in_range(&body, suffix),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::Timeout),
        };
        match outcome {
            Ok(0) => Breach::NotFound,
            Ok(count) => Breach::Found(count),
            Err(failure) => {
                // Neither the password nor any part of its hash: the prefix alone narrows it to a range.
                tracing::warn!(
                    metric = UNAVAILABLE_METRIC,
                    reason = %failure,
                    "breached-password check unavailable; letting the password through unchecked"
                );
                Breach::Unknown
            }
        }
    }

    async fn fetch_range(&self, base: &str, prefix: &str) -> Result<String, Failure> {
        // Pads every answer to 800 to 1,000 lines with fake suffixes of count 0, so that the size of the answer on
        // the wire does not tell an observer which prefix was asked.
        let body = self
            .fetcher
            .get_with(&format!("{base}{prefix}"), &[("add-padding", "true")])
            .await
            .map_err(|err| match err {
                FetchError::NotAllowed => Failure::Url,
                FetchError::NoClient => Failure::NoClient,
                FetchError::Timeout => Failure::Timeout,
                FetchError::Connect => Failure::Connect,
                FetchError::Request => Failure::Request,
                FetchError::Status(status) => Failure::Status(status),
                FetchError::Body => Failure::Body,
            })?;
        String::from_utf8(body.to_vec()).map_err(|_| Failure::Body)
    }
}

/// The password's SHA-1 as 40 uppercase hex characters, the form the range API uses.
fn sha1_upper_hex(password: &SecretString) -> SecretString {
    let mut digest: [u8; 20] = Sha1::digest(password.expose_secret().as_bytes()).into();
    let mut hex = String::with_capacity(40);
    for byte in digest {
        for nibble in [byte >> 4, byte & 0x0f] {
            hex.push(char::from(b"0123456789ABCDEF"[usize::from(nibble)]));
        }
    }
    digest.zeroize();
    SecretString::from(hex)
}

/// How often `suffix` appears in a range answer (`SUFFIX:COUNT` lines); 0 when absent. Padding lines have a
/// count of 0, so a padding line that happens to carry the suffix counts as absent. Every line is compared in
/// constant time and none ends the scan early. An answer with no line, or any line that is not a range entry,
/// is rejected: a real range is never empty, so that is a wrong URL or a broken proxy, not a clean password.
fn count_in_range(body: &str, suffix: &str) -> Result<u64, Failure> {
    let mut found = 0u64;
    let mut lines = 0usize;
    for line in body.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (candidate, count) = line.split_once(':').ok_or(Failure::Malformed)?;
        if candidate.len() != 40 - PREFIX_LEN || !candidate.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Failure::Malformed);
        }
        let count: u64 = count.trim().parse().map_err(|_| Failure::Malformed)?;
        let candidate = candidate.to_ascii_uppercase();
        let hit = candidate.as_bytes().ct_eq(suffix.as_bytes());
        found = u64::conditional_select(&found, &count, hit);
        lines += 1;
    }
    if lines == 0 {
        return Err(Failure::Malformed);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8.
    const PASSWORD_SUFFIX: &str = "1E4C9B93F3F0682250B6CF8331B7EE68FD8";

    #[test]
    fn hashes_to_uppercase_sha1_hex() {
        let hash = sha1_upper_hex(&SecretString::from("password"));
        assert_eq!(hash.expose_secret(), "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
        let hash = sha1_upper_hex(&SecretString::from("pässwörd ✓"));
        assert_eq!(hash.expose_secret().len(), 40);
        assert!(hash
            .expose_secret()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
    }

    #[test]
    fn finds_the_suffix_and_its_count() {
        let body = format!(
            "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{PASSWORD_SUFFIX}:10434004\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2\r\n"
        );
        assert_eq!(count_in_range(&body, PASSWORD_SUFFIX), Ok(10_434_004));
        let lower = format!("{}:7\n", PASSWORD_SUFFIX.to_ascii_lowercase());
        assert_eq!(count_in_range(&lower, PASSWORD_SUFFIX), Ok(7));
    }

    #[test]
    fn absent_suffix_and_zero_count_padding_are_not_found() {
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0";
        assert_eq!(count_in_range(body, PASSWORD_SUFFIX), Ok(0));
        let padded = format!("0018A45C4D1DEF81644B54AB7F969B88D65:3\r\n{PASSWORD_SUFFIX}:0\r\n");
        assert_eq!(count_in_range(&padded, PASSWORD_SUFFIX), Ok(0));
    }

    #[test]
    fn anything_but_a_range_is_rejected() {
        for body in [
            "",
            "\r\n\r\n",
            "<html>Service Unavailable</html>",
            "0018A45C4D1DEF81644B54AB7F969B88D65",
            "0018A45C4D1DEF81644B54AB7F969B88D65:many",
            "0018A45C4D1DEF81644B54AB7F969B88D65:-1",
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ:1",
            "1E4C9B93F3F0682250B6CF8331B7EE68FD8:1\r\nnot a line",
        ] {
            assert_eq!(
                count_in_range(body, PASSWORD_SUFFIX),
                Err(Failure::Malformed),
                "{body:?}"
            );
        }
    }

    fn config(check: BreachedPasswordCheck, url: &str) -> Config {
        let vars = [
            ("KEYGATE_TABLE", "t"),
            ("KEYGATE_KEY_SECRET_ID", "s"),
            ("KEYGATE_ISSUER", "https://auth.example.com"),
            ("KEYGATE_MAIL_FROM", "no-reply@example.com"),
            (
                "KEYGATE_MAIL_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/000000000000/mail",
            ),
            ("KEYGATE_HIBP_URL", url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut config = Config::from_vars(&vars).unwrap();
        config.breached_password_check = check;
        config
    }

    #[tokio::test]
    async fn off_answers_unknown_without_a_client() {
        let checker = BreachChecker::new(&config(BreachedPasswordCheck::Off, "http://127.0.0.1:9/range/"));
        assert!(!checker.is_enabled());
        assert_eq!(checker.check(&SecretString::from("password")).await, Breach::Unknown);
        assert!(!checker.fetcher.is_built());
    }

    /// The HTTPS client loads the system's trusted roots (as on Lambda's provided.al2023) with aws-lc-rs, and a
    /// failed TLS connection is an `Unknown`, not a pass.
    #[tokio::test]
    async fn https_client_uses_the_system_roots() {
        assert!(crate::https::build_client().is_some());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/range/", listener.local_addr().unwrap());
        drop(listener);
        let checker = BreachChecker::new(&config(BreachedPasswordCheck::Hibp, &url));
        assert_eq!(checker.check(&SecretString::from("password")).await, Breach::Unknown);
        assert!(checker.fetcher.is_built());
    }

    /// A log line of a failed check: counted, and nothing of the password or its hash in it.
    #[test]
    fn a_failed_check_logs_the_metric_and_nothing_of_the_password() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/range/", listener.local_addr().unwrap());
        drop(listener);
        let checker = BreachChecker::new(&config(BreachedPasswordCheck::Hibp, &url));
        let logs = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let password = "Tr0ub4dor&3 but longer";
        let answer = tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(checker.check(&SecretString::from(password)))
        });
        assert_eq!(answer, Breach::Unknown);
        let logged = logs.text();
        assert!(logged.contains(r#""metric":"hibp_unavailable""#), "{logged}");
        let hash = sha1_upper_hex(&SecretString::from(password));
        let prefix = &hash.expose_secret()[..PREFIX_LEN];
        for leak in [
            password,
            hash.expose_secret(),
            &hash.expose_secret()[PREFIX_LEN..],
            prefix,
        ] {
            assert!(!logged.contains(leak), "{leak} in {logged}");
            assert!(!logged.contains(&leak.to_ascii_lowercase()), "{leak} in {logged}");
        }
    }

    #[derive(Clone, Default)]
    struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl LogBuffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for LogBuffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
}
