//! The mailer of the local stack: polls the outbox queue on moto, turns each batch into the SQS event Lambda
//! would build, and hands it to the same delivery code the mailer function runs; then deletes what was delivered,
//! as Lambda's event source mapping does. It never long-polls: moto's server is single-threaded (DESIGN §3), and a
//! waiting ReceiveMessage would stall every other request, so it polls with a short sleep instead.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use keygate::clock::UnixTime;
use keygate::mail::Delivery;
use keygate::{Clock, Config};
use serde_json::{json, Map, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a received message stays hidden: a failed one comes back after this, as on AWS.
const VISIBILITY_SECONDS: i32 = 30;
/// The pause between polls of an empty queue.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How long [`LocalMailer::drain`] waits for messages another poller is delivering.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Delivers the outbox queue of a local stack.
pub struct LocalMailer {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    region: String,
    delivery: Delivery,
}

impl LocalMailer {
    /// A mailer for `queue_url`, delivering with `delivery`.
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: String, region: String, delivery: Delivery) -> Self {
        Self {
            sqs,
            queue_url,
            region,
            delivery,
        }
    }

    /// The queue of `KEYGATE_MAIL_QUEUE_URL`, with its own SQS, SES and DynamoDB clients (none of them counted).
    pub fn from_config(config: &Config, aws: &aws_config::SdkConfig) -> Self {
        Self::new(
            aws_sdk_sqs::Client::new(aws),
            config.mail_queue_url.clone(),
            aws.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string),
            Delivery::from_config(config, aws),
        )
    }

    /// The SQS client.
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives up to 10 messages without waiting, never long-polling.
    pub async fn receive(&self) -> Result<Vec<Message>, BoxError> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(VISIBILITY_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        Ok(output.messages.unwrap_or_default())
    }

    /// The event Lambda's SQS event source would hand the mailer function for `messages`.
    pub fn event(&self, messages: &[Message]) -> Result<SqsEvent, BoxError> {
        let (account, name) = match self.queue_url.rsplit('/').collect::<Vec<_>>()[..] {
            [name, account, ..] => (account, name),
            _ => return Err(format!("{} is not a queue URL", self.queue_url).into()),
        };
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: Map<String, Value> = m
                    .attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "md5OfBody": m.md5_of_body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:{}:{account}:{name}", self.region),
                    "awsRegion": self.region,
                })
            })
            .collect();
        Ok(serde_json::from_value(json!({ "Records": records }))?)
    }

    /// One poll: receive, deliver, delete what was delivered. Failed messages stay on the queue and come back after
    /// the visibility timeout. Returns how many messages it received and how many of them failed.
    pub async fn poll_once(&self, now: UnixTime) -> Result<(usize, usize), BoxError> {
        let messages = self.receive().await?;
        if messages.is_empty() {
            return Ok((0, 0));
        }
        let failures = self.delivery.deliver(&self.event(&messages)?.records, now).await;
        let entries = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !failures.iter().any(|f| f == id)))
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await?;
        }
        Ok((messages.len(), failures.len()))
    }

    /// Delivers everything on the queue, and waits a little for messages another poller holds, so that mail queued
    /// before the call has reached SES when it returns (tests read it right after).
    pub async fn drain(&self, clock: &Clock) -> Result<(), BoxError> {
        let mut own_failures = 0;
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        loop {
            let (received, failed) = self.poll_once(clock.now()).await?;
            own_failures += failed;
            if received > 0 {
                continue;
            }
            if self.in_flight().await? <= own_failures || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages received by some poller and not yet deleted.
    pub async fn in_flight(&self) -> Result<usize, BoxError> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        Ok(output
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Polls until the task is dropped, as Lambda's event source mapping would.
    pub async fn run(&self, clock: &Clock) {
        loop {
            match self.poll_once(clock.now()).await {
                Ok((received, _)) if received > 0 => continue,
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "polling the mail queue failed"),
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
}
