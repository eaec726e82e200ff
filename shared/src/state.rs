//! [`State`]: what a function builds once at cold start and hands to every request.

use crate::config::{Config, ConfigError};
use crate::keys::KeyStore;
use crate::mail::Mailer;
use crate::metrics::CallCounter;
use crate::store::Store;
use crate::Clock;

/// Configuration and clients, built once per process.
pub struct State {
    /// The deployment's configuration.
    pub config: Config,
    /// The wall clock (tests move it).
    pub clock: Clock,
    /// DynamoDB.
    pub store: Store,
    /// SES.
    pub mailer: Mailer,
    /// Signing keys (private secret) and verifying keys (public key set) from Secrets Manager.
    pub keys: KeyStore,
}

impl State {
    /// Builds the clients from an SDK configuration. Makes no network call.
    pub fn new(config: Config, aws: &aws_config::SdkConfig) -> Self {
        Self::build(config, aws, None)
    }

    /// Like [`State::new`], with every DynamoDB call counted.
    pub fn with_dynamo_counter(config: Config, aws: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        Self::build(config, aws, Some(counter))
    }

    fn build(config: Config, aws: &aws_config::SdkConfig, counter: Option<CallCounter>) -> Self {
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(aws);
        if let Some(counter) = counter {
            dynamo = dynamo.interceptor(counter);
        }
        let store = Store::new(
            aws_sdk_dynamodb::Client::from_conf(dynamo.build()),
            config.table_name.clone(),
        );
        let mailer = Mailer::new(
            aws_sdk_sesv2::Client::new(aws),
            config.mail_from.clone(),
            config.app_url.clone(),
        );
        let keys = KeyStore::new(
            aws_sdk_secretsmanager::Client::new(aws),
            config.key_secret_id.clone(),
            config.public_keys_secret_id.clone(),
            config.key_cache_ttl,
        );
        Self {
            config,
            clock: Clock::system(),
            store,
            mailer,
            keys,
        }
    }

    /// Who is calling: the client IP (see [`crate::http::client_info`]) and User-Agent.
    pub fn client_info(&self, req: &lambda_http::Request) -> crate::http::ClientInfo {
        crate::http::client_info(req, self.config.trusted_proxy.as_ref())
    }

    /// Reads the configuration and the AWS environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::new(config, &aws))
    }
}
