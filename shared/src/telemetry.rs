//! Operational counters, emitted in CloudWatch Embedded Metric Format (EMF) after every invocation.
//!
//! Each process installs one collector ([`install`]; `runtime::run_http` does) and writes what was counted after
//! every invocation ([`flush`]): one JSON line per set of dimensions, which CloudWatch Logs turns into metrics of
//! the namespace `KEYGATE_METRICS_NAMESPACE`. A counter without dimensions is written with one empty dimension set
//! (`"Dimensions": [[]]`), so it is the metric that an alarm on the namespace and name alone watches. Without a
//! collector (unit tests, or an install that failed) counting does nothing. Counts never carry an address, an id
//! or a secret: only the fixed names and dimension values below.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use metrics_cloudwatch_embedded::{Builder, Collector};

/// How a sign-in proved who the caller is (the `method` dimension of `SignIn`).
pub type Method = &'static str;

/// `SignIn{method, outcome}`: a sign-in attempt ended, `outcome` `success` or `failure`.
pub const SIGN_IN: &str = "SignIn";
/// `MfaChallenge`: a second factor was asked for.
pub const MFA_CHALLENGE: &str = "MfaChallenge";
/// `MfaFailure`: a second-factor answer was wrong.
pub const MFA_FAILURE: &str = "MfaFailure";
/// `RateLimited`: an answer refused by a rate limit.
pub const RATE_LIMITED: &str = "RateLimited";
/// `BackoffRefused`: a sign-in attempt refused by the login backoff or a directory's attempt guard.
pub const BACKOFF_REFUSED: &str = "BackoffRefused";
/// `RefreshReuse`: a replayed refresh token revoked its session.
pub const REFRESH_REUSE: &str = "RefreshReuse";
/// `MailQueued`: a message was put on the outbox queue (decoys too: they look the same by design).
pub const MAIL_QUEUED: &str = "MailQueued";
/// `MailSent`: SES accepted an email.
pub const MAIL_SENT: &str = "MailSent";
/// `MailFailed`: an email was not sent: SES or DynamoDB failed (it is retried), or the message was unreadable.
pub const MAIL_FAILED: &str = "MailFailed";
/// `CleanupDeleted{kind}`: items the scheduled cleanup deleted.
pub const CLEANUP_DELETED: &str = "CleanupDeleted";
/// `IdpError{provider}`: an identity provider failed to answer.
pub const IDP_ERROR: &str = "IdpError";

/// Every metric keygate emits; template.yaml's alarms and dashboard name no other.
pub const NAMES: [&str; 11] = [
    SIGN_IN,
    MFA_CHALLENGE,
    MFA_FAILURE,
    RATE_LIMITED,
    BACKOFF_REFUSED,
    REFRESH_REUSE,
    MAIL_QUEUED,
    MAIL_SENT,
    MAIL_FAILED,
    CLEANUP_DELETED,
    IDP_ERROR,
];

/// A sign-in attempt ended: `SignIn{method, outcome=success|failure}`.
pub fn sign_in(method: Method, success: bool) {
    let outcome = if success { "success" } else { "failure" };
    ::metrics::counter!(SIGN_IN, "method" => method, "outcome" => outcome).increment(1);
}

/// A second-factor challenge was issued: `MfaChallenge`.
pub fn mfa_challenge() {
    count(MFA_CHALLENGE, 1);
}

/// A second-factor answer was wrong: `MfaFailure`.
pub fn mfa_failure() {
    count(MFA_FAILURE, 1);
}

/// A refresh token was replayed and its session revoked: `RefreshReuse`.
pub fn refresh_reuse() {
    count(REFRESH_REUSE, 1);
}

/// The cleanup job deleted `count` items of `kind`: `CleanupDeleted{kind}`.
pub fn cleanup_deleted(kind: &'static str, count: u64) {
    ::metrics::counter!(CLEANUP_DELETED, "kind" => kind).increment(count);
}

/// An identity provider failed to answer: `IdpError{provider}`.
pub fn idp_error(provider: &'static str) {
    ::metrics::counter!(IDP_ERROR, "provider" => provider).increment(1);
}

/// A rate limit refused an answer: `RateLimited`.
pub fn rate_limited() {
    count(RATE_LIMITED, 1);
}

/// The login backoff or a directory's attempt guard refused a sign-in attempt: `BackoffRefused`.
pub fn backoff_refused() {
    count(BACKOFF_REFUSED, 1);
}

/// A message was put on the outbox queue: `MailQueued`.
pub fn mail_queued() {
    count(MAIL_QUEUED, 1);
}

/// SES accepted an email: `MailSent`.
pub fn mail_sent() {
    count(MAIL_SENT, 1);
}

/// An email was not sent: `MailFailed`.
pub fn mail_failed() {
    count(MAIL_FAILED, 1);
}

fn count(name: &'static str, by: u64) {
    ::metrics::counter!(name).increment(by);
}

/// Where [`flush`] writes.
enum Output {
    /// Lambda's log stream: CloudWatch Logs reads EMF from it.
    Stdout,
    /// A file the documents are appended to (the local server's `KEYGATE_EMF_FILE`).
    File(Mutex<std::fs::File>),
}

struct Installed {
    collector: &'static Collector,
    output: Output,
}

/// The process's collector: `None` when installing it failed, which is not tried again.
static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Installs the process's collector, writing to stdout, with the metrics in `namespace`. Only the first call of a
/// process installs; it never fails the caller: without a collector counting does nothing, and a warning says so.
/// Whether a collector is installed.
pub fn install(namespace: &str) -> bool {
    install_with(namespace, Output::Stdout)
}

/// As [`install`], appending the documents to the file at `path` instead of stdout (stdout if it cannot be opened).
pub fn install_appending_to(namespace: &str, path: &Path) -> bool {
    match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => install_with(namespace, Output::File(Mutex::new(file))),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "the metrics file cannot be opened; metrics go to stdout");
            install(namespace)
        }
    }
}

fn install_with(namespace: &str, output: Output) -> bool {
    INSTALLED
        .get_or_init(
            || match Builder::new().cloudwatch_namespace(namespace.to_owned()).init() {
                Ok(collector) => Some(Installed { collector, output }),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics collector not installed; counts are dropped");
                    None
                }
            },
        )
        .is_some()
}

fn installed() -> Option<&'static Installed> {
    INSTALLED.get().and_then(Option::as_ref)
}

/// The namespace of the installed collector.
pub fn namespace() -> Option<&'static str> {
    installed().map(|installed| &*installed.collector.config.cloudwatch_namespace)
}

/// Writes what was counted since the last flush to the installed output, and starts counting from zero. A failed
/// write is logged, never returned: metrics must not fail an invocation.
pub fn flush() {
    let Some(installed) = installed() else {
        return;
    };
    let written = match &installed.output {
        // The lock keeps log lines written by other threads out of the middle of a document.
        Output::Stdout => flush_to(std::io::stdout().lock()),
        Output::File(file) => flush_to(&mut *file.lock().unwrap_or_else(PoisonError::into_inner)),
    };
    if let Err(err) = written {
        tracing::warn!(error = %err, "metrics not written");
    }
}

/// Writes what was counted since the last flush to `writer`, one EMF document per line, in one write so that
/// concurrent writers (several requests of the local server appending to one file) never interleave documents.
/// Writes nothing when nothing was counted or no collector is installed.
pub fn flush_to(mut writer: impl Write) -> std::io::Result<()> {
    let Some(installed) = installed() else {
        return Ok(());
    };
    let mut documents = Vec::new();
    installed.collector.flush(&mut documents)?;
    if documents.is_empty() {
        return Ok(());
    }
    writer.write_all(&documents)?;
    writer.flush()
}

/// Runs `work`, then [`flush`]es: an event handler's invocation, counted.
pub async fn flushed<T>(work: impl Future<Output = T>) -> T {
    let output = work.await;
    flush();
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The tests share the process's collector; each takes this lock so that one flush never takes another's counts.
    static SERIAL: Mutex<()> = Mutex::new(());

    const NAMESPACE: &str = "keygate-unit";

    fn flushed_documents() -> Vec<Value> {
        let mut buffer = Vec::new();
        flush_to(&mut buffer).unwrap();
        let text = String::from_utf8(buffer).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "{text}");
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// The document whose dimension set is `dimensions`.
    fn with_dimensions<'a>(documents: &'a [Value], dimensions: &[&str]) -> &'a Value {
        documents
            .iter()
            .find(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([dimensions]))
            .unwrap_or_else(|| panic!("no document with dimensions {dimensions:?} in {documents:?}"))
    }

    fn metric_names(document: &Value) -> Vec<&str> {
        document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn counters_are_written_as_emf_and_start_again_from_zero() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(install(NAMESPACE));
        // Another install keeps the first collector.
        assert!(install("another"));
        assert_eq!(namespace(), Some(NAMESPACE));
        flushed_documents();

        sign_in("unit-password", false);
        sign_in("unit-password", false);
        sign_in("unit-password", true);
        rate_limited();
        backoff_refused();
        backoff_refused();
        refresh_reuse();
        mfa_challenge();
        mfa_failure();
        mail_queued();
        mail_sent();
        cleanup_deleted("unit-session", 7);
        idp_error("unit-ldap");
        let documents = flushed_documents();

        for document in &documents {
            let aws = &document["_aws"];
            assert!(aws["Timestamp"].as_u64().unwrap() > 1_600_000_000_000, "{document}");
            assert_eq!(aws["CloudWatchMetrics"].as_array().unwrap().len(), 1);
            assert_eq!(aws["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
            for name in metric_names(document) {
                assert!(NAMES.contains(&name), "{name}");
                // Every metric's value is a member of the document's root.
                assert!(document[name].is_number(), "{document}");
            }
        }

        // Without labels: one empty dimension set, no dimension member, each count as it was.
        let plain = with_dimensions(&documents, &[]);
        for (name, value) in [
            (RATE_LIMITED, 1),
            (BACKOFF_REFUSED, 2),
            (REFRESH_REUSE, 1),
            (MFA_CHALLENGE, 1),
            (MFA_FAILURE, 1),
            (MAIL_QUEUED, 1),
            (MAIL_SENT, 1),
        ] {
            assert!(metric_names(plain).contains(&name), "{plain}");
            assert_eq!(plain[name], value, "{name} in {plain}");
        }
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));

        // One document per label set, its labels as the dimension set and as root members.
        let failures: Vec<&Value> = documents.iter().filter(|d| d["outcome"] == "failure").collect();
        let successes: Vec<&Value> = documents.iter().filter(|d| d["outcome"] == "success").collect();
        assert_eq!((failures.len(), successes.len()), (1, 1));
        for (document, count) in [(failures[0], 2), (successes[0], 1)] {
            assert_eq!(
                document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["method", "outcome"]])
            );
            assert_eq!(metric_names(document), [SIGN_IN]);
            assert_eq!(
                (&document["method"], &document[SIGN_IN]),
                (&json!("unit-password"), &json!(count))
            );
        }
        let cleanup = with_dimensions(&documents, &["kind"]);
        assert_eq!(
            (&cleanup["kind"], &cleanup[CLEANUP_DELETED]),
            (&json!("unit-session"), &json!(7))
        );
        let idp = with_dimensions(&documents, &["provider"]);
        assert_eq!((&idp["provider"], &idp[IDP_ERROR]), (&json!("unit-ldap"), &json!(1)));

        // Flushed counts are not written again.
        let again = flushed_documents();
        assert!(
            again
                .iter()
                .all(|d| d["outcome"].is_null() && d["kind"].is_null() && d["provider"].is_null()),
            "{again:?}"
        );
        for document in &again {
            for name in [RATE_LIMITED, BACKOFF_REFUSED, SIGN_IN, MAIL_QUEUED, MAIL_SENT] {
                assert!(!metric_names(document).contains(&name), "{document}");
            }
        }
    }

    #[test]
    fn a_file_gets_whole_documents_appended() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        install(NAMESPACE);
        flushed_documents();
        let file = std::env::temp_dir().join(format!("keygate-emf-{}.jsonl", crate::secret::random_b64(6)));
        // A file output appends whole documents.
        cleanup_deleted("unit-file", 1);
        let handle = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        flush_to(&handle).unwrap();
        cleanup_deleted("unit-file", 2);
        flush_to(&handle).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        let counts: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|d| d["kind"] == "unit-file")
            .map(|d| d[CLEANUP_DELETED].clone())
            .collect();
        assert_eq!(counts, [json!(1), json!(2)]);
    }
}
