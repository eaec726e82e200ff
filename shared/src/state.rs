//! [`State`]: what a function builds once at cold start and hands to every request.

use crate::breach::BreachChecker;
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
    /// The mail outbox (SQS); the mailer function sends through SES, the request path never does.
    pub mailer: Mailer,
    /// Signing keys (private secret) and verifying keys (public key set) from Secrets Manager.
    pub keys: KeyStore,
    /// The data key that seals TOTP secrets and hashes backup codes, from Secrets Manager.
    pub mfa_keys: crate::mfa::data_key::DataKeyStore,
    /// The breached-password check (off unless configured).
    pub breach: BreachChecker,
    /// Namespaces the authorizer read lately (`X-Namespace`).
    pub namespaces: crate::tenancy::databases::NamespaceCache,
    /// The identity-provider configuration, from Secrets Manager.
    pub idps: crate::federation::config::IdpStore,
    /// OpenID Connect: ID-token verification and the code exchange.
    pub oidc: crate::federation::oidc::Oidc,
    /// Connections to the LDAP directories of the configuration, reused across requests.
    pub directories: crate::federation::ldap::Directories,
}

impl State {
    /// Builds the clients from an SDK configuration. Makes no network call.
    pub fn new(config: Config, aws: &aws_config::SdkConfig) -> Self {
        Self::build(config, aws, None, None)
    }

    /// Like [`State::new`], with every DynamoDB call counted.
    pub fn with_dynamo_counter(config: Config, aws: &aws_config::SdkConfig, counter: CallCounter) -> Self {
        Self::build(config, aws, Some(counter), None)
    }

    /// Like [`State::new`], with every DynamoDB call and every SQS call counted, each by its own counter.
    pub fn with_call_counters(
        config: Config,
        aws: &aws_config::SdkConfig,
        dynamo: CallCounter,
        sqs: CallCounter,
    ) -> Self {
        Self::build(config, aws, Some(dynamo), Some(sqs))
    }

    fn build(
        config: Config,
        aws: &aws_config::SdkConfig,
        dynamo_counter: Option<CallCounter>,
        sqs_counter: Option<CallCounter>,
    ) -> Self {
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(aws);
        if let Some(counter) = dynamo_counter {
            dynamo = dynamo.interceptor(counter);
        }
        let store = Store::new(
            aws_sdk_dynamodb::Client::from_conf(dynamo.build()),
            config.table_name.clone(),
        );
        let mut sqs = aws_sdk_sqs::config::Builder::from(aws);
        if let Some(counter) = sqs_counter {
            sqs = sqs.interceptor(counter);
        }
        let mailer = Mailer::new(
            aws_sdk_sqs::Client::from_conf(sqs.build()),
            config.mail_queue_url.clone(),
        );
        let secrets = aws_sdk_secretsmanager::Client::new(aws);
        let mfa_keys = crate::mfa::data_key::DataKeyStore::new(
            secrets.clone(),
            config.mfa_key_secret_id.clone(),
            config.key_cache_ttl,
        );
        let idps = crate::federation::config::IdpStore::new(
            secrets.clone(),
            config.idp_secret_id.clone(),
            config.idp_cache_ttl,
        );
        let keys = KeyStore::new(
            secrets,
            config.key_secret_id.clone(),
            config.public_keys_secret_id.clone(),
            config.key_cache_ttl,
        );
        Self {
            breach: BreachChecker::new(&config),
            config,
            clock: Clock::system(),
            store,
            mailer,
            keys,
            mfa_keys,
            namespaces: crate::tenancy::databases::NamespaceCache::default(),
            idps,
            oidc: crate::federation::oidc::Oidc::new(),
            directories: crate::federation::ldap::Directories::new(),
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
