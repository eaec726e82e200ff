//! Helpers for the end-to-end tests: a [`TestApp`] that serves the whole API on a free port over the local AWS
//! services, with methods named after what a user does, and a mailbox that reads moto's sent mail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use keygate::{Config, State};
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

/// A fresh address nobody has used.
pub fn unique_email() -> String {
    format!(
        "user-{}@example.com",
        keygate::secret::random_b64(9).to_lowercase().replace(['-', '_'], "x")
    )
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
    config.rate_limits.mail_per_interval = 1_000;
    config.rate_limits.mail_per_hour = 1_000;
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
        let dynamo_calls = keygate::metrics::CallCounter::new();
        let state = Arc::new(State::with_dynamo_counter(config, &aws, dynamo_calls.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(keygate_local::serve(listener, Arc::clone(&state)));
        let ip = random_loopback();
        Self {
            base,
            state,
            ip,
            dynamo_calls,
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

    /// Every email moto has sent to `to`, oldest first: (subject, body). moto keeps the HTML part only.
    pub async fn emails_to(&self, to: &str) -> Vec<(String, String)> {
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

    /// The DynamoDB items whose partition key is `pk`.
    pub async fn items(
        &self,
        pk: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
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
