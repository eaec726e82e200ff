//! Issue 16 §4: the CloudWatch metrics, as the local server writes them. The counters are the process's, so each
//! test runs its own `keygate-local serve` (the binary `make test` builds before the tests) with
//! `KEYGATE_EMF_FILE`, a namespace and a mail queue of its own, drives real flows against it, and reads the
//! Embedded Metric Format documents it appended.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use keygate::telemetry;
use keygate_e2e::{random_loopback, unique, unique_email, TestApp, PASSWORD};
use serde_json::{json, Value};

/// The `keygate-local` binary of this build, with a metrics file and a namespace of its own.
fn keygate_local(emf: &EmfFile) -> Command {
    // target/debug/deps/e2e-<hash> → target/debug/keygate-local
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join(format!("keygate-local{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is not built: `make test` builds it (cargo build -p keygate-local)",
        binary.display()
    );
    let mut command = Command::new(binary);
    command
        .env("KEYGATE_EMF_FILE", &emf.path)
        .env("KEYGATE_METRICS_NAMESPACE", &emf.namespace)
        .stdin(Stdio::null());
    command
}

/// The file a `keygate-local` process appends its EMF documents to, removed when dropped.
struct EmfFile {
    path: PathBuf,
    namespace: String,
}

impl EmfFile {
    fn new() -> Self {
        Self {
            path: std::env::temp_dir().join(format!("{}.jsonl", unique("keygate-emf-"))),
            namespace: unique("keygate-e2e-"),
        }
    }

    /// Every document written so far, each checked for the EMF shape keygate writes.
    fn documents(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let documents: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        for document in &documents {
            let directives = document["_aws"]["CloudWatchMetrics"].as_array().unwrap();
            assert_eq!(directives.len(), 1, "{document}");
            let directive = &directives[0];
            assert_eq!(directive["Namespace"], json!(self.namespace), "{document}");
            assert!(document["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
            // One dimension set, each of its dimensions a string member of the document.
            let sets = directive["Dimensions"].as_array().unwrap();
            assert_eq!(sets.len(), 1, "{document}");
            for dimension in sets[0].as_array().unwrap() {
                assert!(document[dimension.as_str().unwrap()].is_string(), "{document}");
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(
                    telemetry::NAMES.contains(&name),
                    "{name} is not one of keygate's metrics"
                );
                assert!(document[name].as_u64().is_some_and(|n| n > 0), "{document}");
            }
        }
        documents
    }

    /// The counts so far, summed over the documents, by metric name and dimensions.
    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for document in self.documents() {
            let directive = &document["_aws"]["CloudWatchMetrics"][0];
            let dimensions: BTreeMap<String, String> = directive["Dimensions"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let d = d.as_str().unwrap();
                    (d.to_owned(), document[d].as_str().unwrap().to_owned())
                })
                .collect();
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                *counts.0.entry((name.to_owned(), dimensions.clone())).or_default() += document[name].as_u64().unwrap();
            }
        }
        counts
    }
}

impl Drop for EmfFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A `keygate-local serve` process of this test's own, stopped when dropped.
struct LocalServer {
    child: Child,
    base: String,
    emf: EmfFile,
}

impl LocalServer {
    /// Starts the server on a free port with its own metrics file, namespace and mail queue, plus `env`.
    async fn start(env: &[(&str, &str)]) -> Self {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        // A queue of its own, so that its mailer delivers only its own mail and the suite's mailers never see it.
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
        let queue_url = format!("{endpoint}/123456789012/{}", unique("metrics-mail-"));
        keygate_local::setup::create_mail_queue(&aws_sdk_sqs::Client::new(&aws), &queue_url)
            .await
            .unwrap();
        let configuration_set = unique("keygate-metrics-");
        aws_sdk_sesv2::Client::new(&aws)
            .create_configuration_set()
            .configuration_set_name(&configuration_set)
            .send()
            .await
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let emf = EmfFile::new();
        let child = keygate_local(&emf)
            .arg("serve")
            .env("KEYGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("KEYGATE_MAIL_QUEUE_URL", &queue_url)
            .env("KEYGATE_SES_CONFIGURATION_SET", &configuration_set)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            emf,
        };
        for _ in 0..300 {
            let up = reqwest::get(format!("{}/.well-known/jwks.json", server.base)).await;
            if up.is_ok_and(|answer| answer.status() == 200) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("keygate-local serve did not answer on {}", server.base);
    }

    /// POSTs JSON from the client address `ip`: the status and the body.
    async fn post(&self, ip: IpAddr, path: &str, body: Value) -> (u16, Value) {
        let client = reqwest::Client::builder().local_address(ip).no_proxy().build().unwrap();
        let answer = client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// `POST /v1/auth/login` from `ip`.
    async fn login(&self, ip: IpAddr, email: &str, password: &str) -> (u16, Value) {
        self.post(ip, "/v1/auth/login", json!({ "email": email, "password": password }))
            .await
    }

    /// Waits until `done` holds for the counts (the mailer's are written within a second of its delivery).
    async fn counts_when(&self, done: impl Fn(&Counts) -> bool) -> Counts {
        for _ in 0..100 {
            let counts = self.emf.counts();
            if done(&counts) {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.emf.counts()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts by metric name and dimension set.
#[derive(Debug, Default)]
struct Counts(HashMap<(String, BTreeMap<String, String>), u64>);

impl Counts {
    /// The count of `name` with exactly `dimensions`.
    fn get(&self, name: &str, dimensions: &[(&str, &str)]) -> u64 {
        let dimensions = dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0.get(&(name.to_owned(), dimensions)).copied().unwrap_or(0)
    }

    /// Every dimension set `name` was written with.
    fn dimension_sets(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.0.keys().filter(|(n, _)| n == name).map(|(_, d)| d).collect()
    }
}

#[tokio::test]
async fn sign_ins_limits_and_mail_are_counted_in_emf() {
    // The suite's own app only reads the mail moto sent.
    let app = TestApp::spawn().await;
    let server = LocalServer::start(&[("KEYGATE_RATE_LIMIT_VERIFY_PER_MINUTE", "3")]).await;
    assert!(server.emf.documents().is_empty(), "{:?}", server.emf.documents());

    // A registration queues its code, which the server's mailer sends (with the configuration set).
    let email = unique_email();
    let ip = random_loopback();
    let registered = server
        .post(
            ip,
            "/v1/auth/register",
            json!({ "email": email, "password": PASSWORD, "name": "Metrics" }),
        )
        .await;
    assert_eq!(registered.0, 202, "{registered:?}");
    let code = app.code_sent_to(&email, "verification code").await;
    let verified = server
        .post(ip, "/v1/auth/register/verify", json!({ "email": email, "code": code }))
        .await;
    assert_eq!(verified.0, 200, "{verified:?}");

    // A wrong password, then the right one, each from an address of its own.
    assert_eq!(
        server
            .login(random_loopback(), &email, "not the password at all")
            .await
            .0,
        401
    );
    assert_eq!(server.login(random_loopback(), &email, PASSWORD).await.0, 200);

    // The per-IP limit (3 a minute here; a run straddling two windows may pass 6), a new address each time so
    // that no account's backoff is involved.
    let limited_ip = random_loopback();
    let mut wrong_passwords = 1;
    let mut limited = None;
    for _ in 0..7 {
        let answer = server.login(limited_ip, &unique_email(), PASSWORD).await;
        if answer.0 == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.0, 401, "{answer:?}");
        wrong_passwords += 1;
    }
    let limited = limited.expect("no 429 from the per-IP limit");
    assert_eq!(limited.1["error"]["code"], "rate_limited");

    // The account's backoff: five free failures, then a wait that the next attempt runs into. Each attempt comes
    // from an address of its own, so the per-IP limit stays out of the way.
    let mut backed_off = None;
    for _ in 0..10 {
        let answer = server.login(random_loopback(), &email, "still not the password").await;
        if answer.0 == 429 {
            backed_off = Some(answer);
            break;
        }
        assert_eq!(answer.0, 401, "{answer:?}");
        wrong_passwords += 1;
    }
    let backed_off = backed_off.expect("no 429 from the login backoff");
    assert_eq!(backed_off.1["error"]["code"], "rate_limited");

    let counts = server.counts_when(|c| c.get(telemetry::MAIL_SENT, &[]) >= 1).await;
    // Exactly one refusal of each kind, each a metric without dimensions: the empty dimension set an alarm on the
    // namespace and name alone matches.
    assert_eq!(counts.get(telemetry::RATE_LIMITED, &[]), 1, "{counts:?}");
    assert_eq!(counts.get(telemetry::BACKOFF_REFUSED, &[]), 1, "{counts:?}");
    for name in [
        telemetry::RATE_LIMITED,
        telemetry::BACKOFF_REFUSED,
        telemetry::MAIL_QUEUED,
        telemetry::MAIL_SENT,
    ] {
        assert!(
            counts.dimension_sets(name).iter().all(|d| d.is_empty()),
            "{name}: {counts:?}"
        );
    }
    // The registration code and the welcome were queued; the code at least was sent; nothing failed.
    assert!(counts.get(telemetry::MAIL_QUEUED, &[]) >= 2, "{counts:?}");
    assert!(counts.get(telemetry::MAIL_SENT, &[]) >= 1, "{counts:?}");
    assert_eq!(counts.get(telemetry::MAIL_FAILED, &[]), 0, "{counts:?}");
    // Sign-ins by method and outcome: the password sign-in that worked, and every wrong password.
    let password = |outcome| counts.get(telemetry::SIGN_IN, &[("method", "password"), ("outcome", outcome)]);
    assert!(password("success") >= 1, "{counts:?}");
    assert!(password("failure") >= wrong_passwords, "{wrong_passwords}: {counts:?}");
    for dimensions in counts.dimension_sets(telemetry::SIGN_IN) {
        assert_eq!(
            dimensions.keys().map(String::as_str).collect::<Vec<_>>(),
            ["method", "outcome"]
        );
        assert!(["success", "failure"].contains(&dimensions["outcome"].as_str()));
    }
    // Nothing the flows did not do.
    assert_eq!(counts.dimension_sets(telemetry::MFA_CHALLENGE).len(), 0, "{counts:?}");
    assert_eq!(counts.dimension_sets(telemetry::REFRESH_REUSE).len(), 0, "{counts:?}");
}

#[tokio::test]
async fn the_cleanup_counts_what_it_deleted_by_kind() {
    // A table of its own: the suite's holds every other test's expired items.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let table = unique("metrics-cleanup-");
    let template = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    keygate_local::setup::create_table(&dynamodb, &table, &template)
        .await
        .unwrap();
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64;
    let expired = |i: usize| {
        let expires_at = now - 600;
        let item: HashMap<String, AttributeValue> = [
            ("pk", AttributeValue::S(format!("SESSION#{}", unique("s")))),
            ("sk", AttributeValue::S(format!("SESSION{i}"))),
            ("expires_at", AttributeValue::N(expires_at.to_string())),
            (
                "expiry_bucket",
                AttributeValue::N(keygate::store::expiry_bucket(expires_at).to_string()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
            .build()
    };
    dynamodb
        .batch_write_item()
        .request_items(&table, (0..7).map(expired).collect())
        .send()
        .await
        .unwrap();

    let emf = EmfFile::new();
    let output = keygate_local(&emf)
        .arg("cleanup")
        .env("KEYGATE_TABLE", &table)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The report is the last line; the EMF documents went to the file, not stdout.
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("_aws"), "{stdout}");
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["deleted"]["sessions"], 7, "{report}");

    let counts = emf.counts();
    assert_eq!(
        counts.get(telemetry::CLEANUP_DELETED, &[("kind", "sessions")]),
        7,
        "{counts:?}"
    );
    // Every kind the report names, with its count, and nothing else.
    let kinds = report["deleted"].as_object().unwrap();
    let sets = counts.dimension_sets(telemetry::CLEANUP_DELETED);
    assert_eq!(
        sets.len(),
        kinds.iter().filter(|(_, n)| n.as_u64() > Some(0)).count(),
        "{counts:?}"
    );
    for (kind, deleted) in kinds {
        assert_eq!(
            counts.get(telemetry::CLEANUP_DELETED, &[("kind", kind)]),
            deleted.as_u64().unwrap(),
            "{kind}: {counts:?}"
        );
    }
}
