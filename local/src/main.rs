//! `keygate-local setup` prepares the local AWS services; `keygate-local serve` runs the whole API on one port;
//! `keygate-local idp put FILE.json [--secret-id ID]` validates and stores an identity-provider configuration;
//! `keygate-local cleanup` runs one pass of the scheduled cleanup. `serve` and `cleanup` write their metrics in
//! CloudWatch's Embedded Metric Format, as the functions do: on stdout, or appended to `KEYGATE_EMF_FILE`.

mod idp;

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} must be set (the Makefile sets it)").into())
}

fn main() -> Result<ExitCode, BoxError> {
    // Lambda gives a function's thread 8 MiB of stack; the local server's threads get the same, which unoptimised
    // builds of the sign-in flows need.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()?
        .block_on(run())
}

async fn run() -> Result<ExitCode, BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().cloned().unwrap_or_default();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match command.as_str() {
        "setup" => {
            let template = std::fs::read_to_string(env("KEYGATE_TEMPLATE").unwrap_or_else(|_| "template.yaml".into()))?;
            keygate_local::setup::create_table(&aws_sdk_dynamodb::Client::new(&aws), &env("KEYGATE_TABLE")?, &template)
                .await?;
            let config = keygate::Config::from_env()?;
            let secrets = keygate::rotation::Secrets {
                private: &config.key_secret_id,
                public: &config.public_keys_secret_id,
            };
            keygate_local::setup::ensure_signing_key(&aws_sdk_secretsmanager::Client::new(&aws), secrets).await?;
            keygate_local::setup::ensure_mfa_key(&aws_sdk_secretsmanager::Client::new(&aws), &config.mfa_key_secret_id)
                .await?;
            keygate_local::setup::verify_sender(&aws_sdk_sesv2::Client::new(&aws), &env("KEYGATE_MAIL_FROM")?).await?;
            keygate_local::setup::create_mail_queue(&aws_sdk_sqs::Client::new(&aws), &env("KEYGATE_MAIL_QUEUE_URL")?)
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        "serve" => {
            tracing_init();
            let address = env("KEYGATE_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
            let config = keygate::Config::from_env()?;
            install_metrics(&config);
            // The mailer function's delivery code, fed from the local queue as Lambda would feed it.
            let mailer = keygate_local::mailer::LocalMailer::from_config(&config, &aws);
            let state = Arc::new(keygate::State::new(config, &aws));
            let clock = Arc::clone(&state);
            tokio::spawn(async move { mailer.run(&clock.clock).await });
            // Each request writes its metrics when it ends; this writes the mailer's, which no request ends.
            tokio::spawn(async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    keygate::telemetry::flush();
                }
            });
            let listener = TcpListener::bind(&address).await?;
            println!("keygate API listening on http://{}", listener.local_addr()?);
            keygate_local::serve(listener, state).await?;
            Ok(ExitCode::SUCCESS)
        }
        "idp" => idp::run(&args[1..], &aws).await,
        "cleanup" => {
            // One pass of the scheduled cleanup, as token-cleanup runs it (`make dev` runs this every minute).
            let state = keygate::State::new(keygate::Config::from_env()?, &aws);
            install_metrics(&state.config);
            let report = keygate::cleanup::run(&state, state.clock.now(), || std::time::Duration::from_secs(300)).await?;
            keygate::telemetry::flush();
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            Err("usage: keygate-local setup|serve|cleanup|idp put FILE.json [--secret-id ID]|idp show [--secret-id ID]|idp demo".into())
        }
    }
}

/// The metrics collector, as each Lambda installs it: EMF documents on stdout, or appended to the file
/// `KEYGATE_EMF_FILE` names (the tests read them there).
fn install_metrics(config: &keygate::Config) {
    let namespace = &config.metrics_namespace;
    match std::env::var_os("KEYGATE_EMF_FILE").filter(|path| !path.is_empty()) {
        Some(path) => keygate::telemetry::install_appending_to(namespace, std::path::Path::new(&path)),
        None => keygate::telemetry::install(namespace),
    };
}

fn tracing_init() {
    keygate::runtime::init_tracing();
}
