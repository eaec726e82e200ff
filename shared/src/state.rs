//! [`State`]: what a function builds once at cold start and hands to every request.

use std::sync::{Arc, OnceLock};

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
        let mailer = Mailer::new(LazyClient::new(aws, sqs_counter), config.mail_queue_url.clone());
        let secrets = Arc::new(LazyClient::new(aws, None));
        let mfa_keys = crate::mfa::data_key::DataKeyStore::new(
            Arc::clone(&secrets),
            config.mfa_key_secret_id.clone(),
            config.key_cache_ttl,
        );
        let idps = crate::federation::config::IdpStore::new(
            Arc::clone(&secrets),
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
        // Lambda puts the region and the role's credentials in the environment, and so does the local stack
        // (scripts/local-env.sh). The default chains would try the same variables first; naming them keeps the
        // chains' other sources (profiles, SSO, STS web identity, ECS, IMDS) and their clients out of the binary.
        let mut aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
        // On AWS the SDK talks only to AWS endpoints; a local stack over https (AWS_ENDPOINT_URL or a per-service
        // AWS_ENDPOINT_URL_*) keeps the system's roots, and one over plain http needs none. Outside
        // the commercial partition (China, GovCloud, the isolated and sovereign regions) AWS does not promise Amazon
        // Trust Services chains, so those keep the system's roots.
        let local_tls =
            std::env::vars().any(|(name, url)| name.starts_with("AWS_ENDPOINT_URL") && url.starts_with("https:"));
        let region = std::env::var("AWS_REGION").unwrap_or_default();
        if !local_tls && commercial_partition(&region) {
            match aws_http_client() {
                Ok(client) => aws = aws.http_client(client),
                Err(err) => tracing::error!(error = %err, "the compiled-in AWS roots did not load; using the system's"),
            }
        }
        Ok(Self::new(config, &aws.load().await))
    }
}

/// An SDK client built on its first use. A function whose handler never calls the service neither builds the
/// client at cold start nor links its configuration and runtime plugins (about 50 KB for SQS with fat LTO): only
/// [`LazyClient::get`] names the constructor, and only the functions that call the service reach it. Building makes
/// no network call.
pub struct LazyClient<C> {
    aws: aws_config::SdkConfig,
    counter: Option<CallCounter>,
    client: OnceLock<C>,
}

impl<C: SdkClient> LazyClient<C> {
    /// A client of `aws`'s configuration, every call counted by `counter` if there is one.
    pub fn new(aws: &aws_config::SdkConfig, counter: Option<CallCounter>) -> Self {
        Self {
            aws: aws.clone(),
            counter,
            client: OnceLock::new(),
        }
    }

    /// The client, built on the first call.
    pub fn get(&self) -> &C {
        self.client.get_or_init(|| C::build(&self.aws, self.counter.clone()))
    }
}

/// An AWS SDK client that a [`LazyClient`] can build.
pub trait SdkClient {
    /// The client for `aws`, with `counter` as an interceptor if there is one.
    fn build(aws: &aws_config::SdkConfig, counter: Option<CallCounter>) -> Self;
}

impl SdkClient for aws_sdk_sqs::Client {
    fn build(aws: &aws_config::SdkConfig, counter: Option<CallCounter>) -> Self {
        let mut config = aws_sdk_sqs::config::Builder::from(aws);
        if let Some(counter) = counter {
            config = config.interceptor(counter);
        }
        Self::from_conf(config.build())
    }
}

impl SdkClient for aws_sdk_secretsmanager::Client {
    fn build(aws: &aws_config::SdkConfig, counter: Option<CallCounter>) -> Self {
        let mut config = aws_sdk_secretsmanager::config::Builder::from(aws);
        if let Some(counter) = counter {
            config = config.interceptor(counter);
        }
        Self::from_conf(config.build())
    }
}

/// Whether `region` is in AWS's commercial partition (`aws`), whose endpoints serve Amazon Trust Services chains.
/// A region of a partition this list does not know (a sovereign cloud, say) keeps the system's roots.
fn commercial_partition(region: &str) -> bool {
    const COMMERCIAL: [&str; 9] = ["us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-"];
    const OTHERS: [&str; 3] = ["us-gov-", "us-iso", "eu-iso"];
    COMMERCIAL.iter().any(|prefix| region.starts_with(prefix))
        && !OTHERS.iter().any(|prefix| region.starts_with(prefix))
}

/// The roots AWS service endpoints chain to (Amazon Trust Services), compiled in.
const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The SDK's HTTPS client (rustls over aws-lc-rs, as the SDK's default) trusting only [`AWS_ROOTS`]. The default
/// client reads and parses the system's CA store at cold start, before the first request: about 40 % of init.
fn aws_http_client(
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient, aws_smithy_http_client::HttpClientError> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let trust = TrustStore::empty().with_pem_certificate(AWS_ROOTS);
    let context = TlsContext::builder().with_trust_store(trust).build()?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_roots() {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(super::AWS_ROOTS)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).unwrap();
        }
        assert_eq!(roots.len(), 5);
        assert!(super::aws_http_client().is_ok());
    }

    #[test]
    fn only_the_commercial_partition_uses_the_compiled_in_roots() {
        for region in [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-2",
            "il-central-1",
            "mx-central-1",
        ] {
            assert!(super::commercial_partition(region), "{region}");
        }
        for region in [
            "cn-north-1",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "eusc-de-east-1",
            "",
        ] {
            assert!(!super::commercial_partition(region), "{region}");
        }
    }
}
