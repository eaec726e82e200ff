//! Lambda bootstrap for `mailer`: build the SES and DynamoDB clients once, then deliver batches.

use aws_lambda_events::event::sqs::SqsEvent;
use keygate::mail::Delivery;
use keygate::{Clock, Config};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    keygate::runtime::init_tracing();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    keygate::telemetry::install(&config.metrics_namespace);
    let delivery = &Delivery::from_config(&config, &aws);
    let clock = &Clock::system();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = mailer::handle(delivery, clock, event.payload).await;
        keygate::telemetry::flush();
        Ok::<_, Error>(response)
    }))
    .await
}
