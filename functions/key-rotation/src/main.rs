//! The rotation Lambda of the signing-key secret. Secrets Manager invokes it once per step; a failed step is
//! returned as an invocation error, which is how Secrets Manager learns the rotation failed.
//!
//! DynamoDB round trips: 0.

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use keygate::rotation::{self, Step};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    keygate::runtime::init_tracing();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let client = &client;
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
            rotation::run_step(client, &secret_id, &client_request_token, step)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok::<(), Error>(())
        },
    ))
    .await
}
