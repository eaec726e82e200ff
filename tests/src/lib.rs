//! Helpers for the end-to-end tests: a [`TestApp`] that serves the whole API on a free port over the local AWS
//! services, with methods named after what a user does, and a mailbox that reads moto's sent mail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod contract;
pub mod ldap;
pub mod oidc;
pub mod passkey;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use keygate::{Config, State};
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

/// A DynamoDB item, as the SDK gives it.
pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// A fresh address nobody has used.
pub fn unique_email() -> String {
    format!(
        "user-{}@example.com",
        keygate::secret::random_b64(9).to_lowercase().replace(['-', '_'], "x")
    )
}

/// A fresh name with `prefix`: six random lowercase characters appended.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        keygate::secret::random_b64(6).to_lowercase().replace(['-', '_'], "x")
    )
}

/// The token of the magic link in an email body.
pub fn link_token(body: &str) -> String {
    let start = body.find("magic-link?token=").expect("a link in the email") + "magic-link?token=".len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The claims of a JWT, unverified (the tests read what keygate signed).
pub fn jwt_claims(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token).unwrap().claims
}

/// A real API Gateway authorizer event (payload 2.0) carrying `authorization` as its `Authorization` header.
pub fn authorizer_event(authorization: &str) -> Value {
    let raw = std::fs::read_to_string(format!(
        "{}/fixtures/apigw_v2_authorizer.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&raw.replace("Bearer TOKEN", authorization)).unwrap()
}

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body parsed as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The raw body.
    pub raw: Vec<u8>,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// A string field of the body.
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.body))
            .to_owned()
    }

    /// The signed-in user's id: `user.id` of a token response.
    pub fn user_id(&self) -> String {
        self.body["user"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no user.id in {}", self.body))
            .to_owned()
    }
}

/// The password hash in the sign-in copy an email marker carries, if it carries one.
pub fn copied_hash(marker: &Item) -> Option<String> {
    let copy = marker.get("profile")?.as_m().ok()?;
    copy.get("password_hash")?.as_s().ok().cloned()
}

/// The API, served in-process on a free port, with its own client address in 127.0.0.0/8 so that per-IP rate
/// limits of concurrent tests do not interfere.
pub struct TestApp {
    /// Base URL of the API.
    pub base: String,
    /// The state the handlers share; tests move its clock.
    pub state: Arc<State>,
    /// The client's source address.
    pub ip: IpAddr,
    /// Every DynamoDB call the handlers make, by operation.
    pub dynamo_calls: keygate::metrics::CallCounter,
    /// Every SQS call the handlers make, by operation (`SendMessage` for each queued email).
    pub sqs_calls: keygate::metrics::CallCounter,
    /// The mail outbox's local mailer, with its own clients (not counted): [`TestApp::emails_to`] drains it.
    pub outbox: Arc<keygate_local::mailer::LocalMailer>,
    /// Every answer the server sent, checked against openapi.yaml; a drift fails the test when the app is dropped.
    pub contract: contract::Log,
    client: reqwest::Client,
    moto: String,
}

/// The configuration exactly as the environment sets it, with the default rate limits.
pub fn defaults() -> Config {
    Config::from_env().expect("run the tests with `make test`, which sets KEYGATE_* and moto's endpoint")
}

/// The configuration from the environment `make test` sets.
pub fn test_config() -> Config {
    let mut config = defaults();
    // Tests send many requests from one address; the rate-limit tests lower these again.
    config.rate_limits.verify_per_minute = 1_000;
    config.rate_limits.send_per_minute = 1_000;
    config.rate_limits.lookup_per_minute = 1_000;
    config.rate_limits.mail_interval_seconds = 0;
    config.rate_limits.mail_per_hour = 1_000;
    config.rate_limits.notices_per_hour = 1_000;
    config.rate_limits.code_guesses_per_day = 1_000;
    config.redirect_allowlist = vec!["https://app.example.com/welcome".to_owned()];
    config
}

/// A random loopback address other than 127.0.0.1.
pub fn random_loopback() -> IpAddr {
    let bytes = keygate::secret::random_b64(3).into_bytes();
    IpAddr::V4(Ipv4Addr::new(127, bytes[0].max(2), bytes[1], bytes[2].max(2)))
}

impl TestApp {
    /// Serves the API with the test configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Serves the API with an adjusted configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        adjust(&mut config);
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        // `make test` records every DynamoDB action each function makes, to check them against template.yaml.
        let dynamo_calls = match std::env::var_os("KEYGATE_RECORD_DYNAMODB_ACTIONS") {
            Some(path) => keygate::metrics::CallCounter::recording_actions_to(std::path::Path::new(&path)).unwrap(),
            None => keygate::metrics::CallCounter::new(),
        };
        let sqs_calls = match std::env::var_os("KEYGATE_RECORD_DYNAMODB_ACTIONS") {
            Some(path) => keygate::metrics::CallCounter::recording_actions_to(std::path::Path::new(&path)).unwrap(),
            None => keygate::metrics::CallCounter::new(),
        };
        let outbox = Arc::new(keygate_local::mailer::LocalMailer::from_config(&config, &aws));
        let state = Arc::new(State::with_call_counters(
            config,
            &aws,
            dynamo_calls.clone(),
            sqs_calls.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // The server shows the log every answer, whichever client asked (this one, reqwest, oauth2): all are
        // checked against openapi.yaml.
        let log = contract::Log::default();
        let observer_log = log.clone();
        let observer: keygate_local::Observer = Arc::new(move |exchange| observer_log.observe(exchange));
        tokio::spawn(keygate_local::serve_observed(
            listener,
            Arc::clone(&state),
            Some(observer),
        ));
        let ip = random_loopback();
        Self {
            base,
            state,
            ip,
            dynamo_calls,
            sqs_calls,
            outbox,
            contract: log,
            client: client_from(ip),
            moto: std::env::var("AWS_ENDPOINT_URL").unwrap(),
        }
    }

    /// The same API seen from another client address.
    pub fn from_ip(&self, ip: IpAddr) -> Self {
        Self {
            base: self.base.clone(),
            state: Arc::clone(&self.state),
            ip,
            dynamo_calls: self.dynamo_calls.clone(),
            sqs_calls: self.sqs_calls.clone(),
            outbox: Arc::clone(&self.outbox),
            contract: self.contract.clone(),
            client: client_from(ip),
            moto: self.moto.clone(),
        }
    }

    /// Sends a request and reads the answer whole.
    pub async fn send(&self, method: &str, path: &str, bearer: Option<&str>, body: Option<Vec<u8>>) -> Answer {
        let mut request = self.request(method, path);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        read(request).await
    }

    /// Sends JSON with a given User-Agent.
    pub async fn send_with_agent(&self, user_agent: &str, method: &str, path: &str, body: Value) -> Answer {
        let request = self
            .request(method, path)
            .header("user-agent", user_agent)
            .header("content-type", "application/json");
        read(request.body(body.to_string())).await
    }

    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// POSTs JSON.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, None, Some(body.to_string().into_bytes())).await
    }

    /// POSTs JSON with a bearer token.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Answer {
        self.send("POST", path, Some(token), Some(body.to_string().into_bytes()))
            .await
    }

    /// GETs, optionally with a bearer token.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        self.send("GET", path, bearer, None).await
    }

    /// `POST /v1/auth/register`.
    pub async fn register(&self, email: &str, password: &str) -> Answer {
        self.post(
            "/v1/auth/register",
            json!({ "email": email, "password": password, "name": "Test User" }),
        )
        .await
    }

    /// `POST /v1/auth/register/verify`.
    pub async fn verify(&self, email: &str, code: &str) -> Answer {
        self.post("/v1/auth/register/verify", json!({ "email": email, "code": code }))
            .await
    }

    /// Registers a new address, reads the code from the mail, verifies: the token response.
    pub async fn signed_up_user(&self) -> (String, Answer) {
        let email = unique_email();
        assert_eq!(self.register(&email, PASSWORD).await.status, 202);
        let code = self.code_sent_to(&email, "verification code").await;
        let tokens = self.verify(&email, &code).await;
        assert_eq!(tokens.status, 200, "{:?}", tokens.body);
        // Deliver the welcome now: mail queued together is delivered in no particular order, and tests read the
        // newest email of what they do next.
        self.deliver_mail().await;
        (email, tokens)
    }

    /// A signed-up user and a PAT of theirs with `scopes`: (the session's token response, the create response).
    pub async fn user_with_pat(&self, scopes: &[&str]) -> (Answer, Answer) {
        let (_, session) = self.signed_up_user().await;
        let pat = self
            .post_as(
                &session.str("access_token"),
                "/v1/api-tokens",
                json!({ "name": "test", "scopes": scopes }),
            )
            .await;
        assert_eq!(pat.status, 201, "{:?}", pat.body);
        (session, pat)
    }

    /// `POST /v1/auth/change-password` with a bearer token.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Answer {
        self.post_as(
            token,
            "/v1/auth/change-password",
            json!({ "current_password": current, "new_password": new }),
        )
        .await
    }

    /// Asks for a reset code, reads it from the mail, and resets the password with it: the reset's answer.
    pub async fn reset_password(&self, email: &str, new_password: &str) -> Answer {
        self.post("/v1/auth/password-reset-request", json!({ "email": email }))
            .await;
        let code = self.code_sent_to(email, "reset code").await;
        self.post(
            "/v1/auth/password-reset",
            json!({ "email": email, "code": code, "new_password": new_password }),
        )
        .await
    }

    /// `POST /v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Answer {
        self.post("/v1/auth/login", json!({ "email": email, "password": password }))
            .await
    }

    /// `POST /v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post("/v1/auth/refresh", json!({ "refresh_token": refresh_token }))
            .await
    }

    /// `GET /v1/auth/me`.
    pub async fn me(&self, access_token: &str) -> Answer {
        self.get("/v1/auth/me", Some(access_token)).await
    }

    /// Delivers the mail queued so far (by any test: they share the queue) through the mailer's delivery code,
    /// so it is in moto's SES when this returns.
    pub async fn deliver_mail(&self) {
        self.outbox.drain(&self.state.clock).await.unwrap();
    }

    /// Every email moto has sent to `to`, oldest first: (subject, body), after delivering the queued mail. moto
    /// keeps the HTML part only.
    pub async fn emails_to(&self, to: &str) -> Vec<(String, String)> {
        self.deliver_mail().await;
        self.sent_emails_to(to).await
    }

    /// Every email moto has sent to `to`, without delivering the queued mail first.
    pub async fn sent_emails_to(&self, to: &str) -> Vec<(String, String)> {
        // The `ses.Message` list of moto's /moto-api/data.json, served alone (see local/moto/server.py).
        let messages: Value = reqwest::get(format!("{}/moto-api/keygate/sent-email", self.moto))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        messages
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .filter(|m| {
                        m["destinations"]["ToAddresses"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x == to))
                    })
                    .map(|m| {
                        (
                            m["subject"].as_str().unwrap_or("").to_owned(),
                            m["body"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The code in the newest email to `to` whose body mentions `kind`.
    pub async fn code_sent_to(&self, to: &str, kind: &str) -> String {
        for _ in 0..20 {
            let emails = self.emails_to(to).await;
            if let Some((_, body)) = emails.iter().rev().find(|(_, body)| body.contains(kind)) {
                let digits: String = body
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|chunk| chunk.len() == 6)
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(digits.len(), 6, "no code in {body}");
                return digits;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no email about {kind:?} reached {to}");
    }

    /// The current signing key, read from Secrets Manager, for forging tokens the way an insider could.
    pub async fn signing_key(&self) -> (String, jsonwebtoken::EncodingKey) {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_secretsmanager::Client::new(&aws);
        let material = keygate::keys::fetch_stage(&client, &self.state.config.key_secret_id, "AWSCURRENT", None)
            .await
            .unwrap()
            .unwrap()
            .signing;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(material.private_key_pem.expose_secret().as_bytes()).unwrap();
        (material.kid, key)
    }

    /// Stores `doc` as the identity-provider configuration (the secret `config.idp_secret_id`, created if missing,
    /// else a new AWSCURRENT version), unvalidated, so tests can store broken documents too.
    pub async fn put_idp_document(&self, doc: &Value) {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_secretsmanager::Client::new(&aws);
        let secret_id = &self.state.config.idp_secret_id;
        let created = client
            .create_secret()
            .name(secret_id)
            .secret_string(doc.to_string())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
                client
                    .put_secret_value()
                    .secret_id(secret_id)
                    .secret_string(doc.to_string())
                    .send()
                    .await
                    .unwrap();
            }
            Err(err) => panic!(
                "creating {secret_id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&err)
            ),
        }
    }

    /// Writes attributes of a user item directly, as a step outside the API would (an IdP's provisioning, an
    /// account placed in a tenant). `#role` and `#status` stand for those reserved words.
    pub async fn update_user(&self, user_id: &str, expression: &str, values: &[(&str, &str)]) {
        let mut update = self
            .state
            .store
            .client()
            .update_item()
            .table_name(&self.state.config.table_name)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{user_id}")),
            )
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()))
            .update_expression(expression);
        for name in ["role", "status"] {
            if expression.contains(&format!("#{name}")) {
                update = update.expression_attribute_names(format!("#{name}"), name);
            }
        }
        for (name, value) in values {
            update = update
                .expression_attribute_values(*name, aws_sdk_dynamodb::types::AttributeValue::S((*value).to_owned()));
        }
        update.send().await.unwrap();
    }

    /// Creates a service account of `role` named `name` with `password`, as the holder of `jwt`: its id.
    pub async fn service_account(&self, jwt: &str, name: &str, password: &str, role: &str) -> String {
        let created = self
            .post_as(
                jwt,
                "/v1/accounts/service",
                json!({ "service_name": name, "password": password, "role": role }),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        created.str("id")
    }

    /// The email marker of `email` (`EMAIL#<address>/USER`), as stored.
    pub async fn marker(&self, email: &str) -> Option<Item> {
        self.items(&format!("EMAIL#{email}")).await.into_iter().find(|item| {
            item.get("sk")
                .and_then(|sk| sk.as_s().ok())
                .is_some_and(|sk| sk == "USER")
        })
    }

    /// Writes `item` as given, past keygate: a state the API itself would not leave behind.
    pub async fn put_item(&self, item: Item) {
        self.state
            .store
            .client()
            .put_item()
            .table_name(&self.state.config.table_name)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    /// The DynamoDB items whose partition key is `pk`.
    pub async fn items(&self, pk: &str) -> Vec<Item> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_dynamodb::Client::new(&aws);
        client
            .query()
            .table_name(&self.state.config.table_name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

impl Drop for TestApp {
    /// Fails the test when an answer drifted from openapi.yaml (unless it is failing already): every answer the
    /// server sent has been checked by the time the client read it.
    fn drop(&mut self) {
        let drifts = self.contract.take_drifts();
        if !drifts.is_empty() && !std::thread::panicking() {
            panic!(
                "{} answer(s) drifted from openapi.yaml:\n\n{}",
                drifts.len(),
                drifts.join("\n\n")
            );
        }
    }
}

async fn read(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        raw,
    }
}

fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip).no_proxy().build().unwrap()
}

/// What the stand-in for the Pwned Passwords range API answers to `GET /range/{prefix}`.
#[derive(Debug, Clone)]
pub enum RangeAnswer {
    /// What the real API answers: the suffixes of these passwords' SHA-1 under the asked prefix, each with a
    /// count above 0, and, when asked with `Add-Padding: true`, padding lines with a count of 0.
    Honest(Vec<String>),
    /// This status and a short text body.
    Status(u16),
    /// 200 with this body.
    Body(String),
    /// Accepts the connection and never answers.
    Hang,
}

/// One request the range server received, whole.
#[derive(Debug, Clone)]
pub struct RangeRequest {
    /// The method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RangeRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A local stand-in for the Pwned Passwords range API (the external service, not keygate), which records what it
/// is sent.
pub struct RangeServer {
    /// The base URL to configure as `KEYGATE_HIBP_URL`, ending in `/range/`.
    pub url: String,
    requests: Arc<std::sync::Mutex<Vec<RangeRequest>>>,
}

impl RangeServer {
    /// Every request received so far.
    pub fn requests(&self) -> Vec<RangeRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// SHA-1 of `password`, 40 uppercase hex characters.
pub fn sha1_hex(password: &str) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A range server on 127.0.0.1 that knows `breached` as breached passwords.
pub async fn spawn_range_server(breached: &[&str]) -> RangeServer {
    spawn_range_server_answering(RangeAnswer::Honest(breached.iter().map(|p| (*p).to_owned()).collect())).await
}

/// A range server on 127.0.0.1 that answers every request with `answer`.
pub async fn spawn_range_server_answering(answer: RangeAnswer) -> RangeServer {
    use http_body_util::BodyExt as _;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/range/", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, answer) = (Arc::clone(&seen), answer.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (seen, answer) = (Arc::clone(&seen), answer.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                        let request = RangeRequest {
                            method: parts.method.to_string(),
                            target: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(n, v)| {
                                    (
                                        n.as_str().to_owned(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect(),
                            body,
                        };
                        seen.lock().unwrap().push(request.clone());
                        let (status, text) = range_answer(&answer, &request).await;
                        let mut response =
                            hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(text)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    RangeServer { url, requests }
}

async fn range_answer(answer: &RangeAnswer, request: &RangeRequest) -> (u16, String) {
    match answer {
        RangeAnswer::Hang => std::future::pending().await,
        RangeAnswer::Status(status) => (*status, "error".to_owned()),
        RangeAnswer::Body(body) => (200, body.clone()),
        RangeAnswer::Honest(breached) => {
            let Some(prefix) = request.target.strip_prefix("/range/") else {
                return (404, "Not found".to_owned());
            };
            let prefix = prefix.to_ascii_uppercase();
            if prefix.len() != 5 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return (400, "The hash prefix was not in a valid format".to_owned());
            }
            let mut lines: Vec<String> = breached
                .iter()
                .map(|password| sha1_hex(password))
                .zip(1u64..)
                .filter(|(hash, _)| hash.starts_with(&prefix))
                .map(|(hash, n)| format!("{}:{}", &hash[5..], n * 1_000))
                .collect();
            if request.header("add-padding") == Some("true") {
                lines.extend((0..800).map(|i| format!("{}:0", &sha1_hex(&format!("padding {prefix} {i}"))[5..])));
            }
            (200, lines.join("\r\n"))
        }
    }
}

/// A base URL on 127.0.0.1 where nothing listens: connections are refused at once.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/range/", listener.local_addr().unwrap())
}

/// A [`State`] over the local AWS services with an adjusted test configuration, for tests that call the domain
/// directly rather than over HTTP.
pub async fn state_with(adjust: impl FnOnce(&mut Config)) -> State {
    let mut config = test_config();
    adjust(&mut config);
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    State::new(config, &aws)
}
