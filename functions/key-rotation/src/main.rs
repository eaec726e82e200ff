//! The rotation Lambda of the signing-key secret. Secrets Manager invokes it once per step; a failed step is
//! returned as an invocation error, which is how Secrets Manager learns the rotation failed. `finishSecret` also
//! writes the public key set to `KEYGATE_PUBLIC_KEYS_SECRET_ID`; invoked by hand with the AWSCURRENT version's id
//! as `ClientRequestToken`, it only publishes that set again.
//!
//! DynamoDB round trips: 0.

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use keygate::rotation::{self, Step};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    keygate::runtime::init_tracing();
    let config = keygate::Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let client = &client;
    let public = config.public_keys_secret_id.as_str();
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<SecretsManagerSecretRotationEvent>| async move {
            let SecretsManagerSecretRotationEvent {
                step,
                secret_id,
                client_request_token,
                ..
            } = event.payload;
            let step = Step::parse(&step).ok_or_else(|| format!("unknown rotation step {step:?}"))?;
            tracing::info!(?step, "rotation step");
            let secrets = rotation::Secrets {
                private: &secret_id,
                public,
            };
            rotation::run_step(client, secrets, &client_request_token, step)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok::<(), Error>(())
        },
    ))
    .await
}
