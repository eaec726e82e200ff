//! The delivery side of the outbox, run by the mailer function (and by the local stack's mailer loop): renders
//! each queued email and sends it through SES v2. Idempotent by SQS message id; reports only the messages to
//! retry.

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client as SesClient;
use serde::Deserialize as _;

use super::outbox::{Envelope, VERSION};
use super::{Mail, Rendered};
use crate::clock::UnixTime;
use crate::email::Email;
use crate::store::{mail_sent, Store};
use crate::{telemetry, Config, Error};

/// What became of one queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// SES accepted it.
    Sent,
    /// An earlier delivery of the same message id sent it (or is sending it); not sent again.
    AlreadySent,
    /// A [`Mail::Decoy`]: nothing to send.
    Decoy,
    /// Not an outbox document keygate can read: logged (without the body) and dropped, never retried.
    Malformed,
    /// SES or DynamoDB failed: the message goes back to the queue and is retried.
    Failed,
}

/// Sends queued emails through SES from `KEYGATE_MAIL_FROM`, claiming each message in DynamoDB first.
pub struct Delivery {
    ses: SesClient,
    store: Store,
    from: String,
    app_url: String,
    configuration_set: Option<String>,
}

impl Delivery {
    /// A delivery sending from `from` (an SES verified identity), with links to `app_url`, claiming in `store`.
    pub fn new(ses: SesClient, store: Store, from: String, app_url: String) -> Self {
        Self {
            ses,
            store,
            from,
            app_url,
            configuration_set: None,
        }
    }

    /// Sends every email with the SES configuration set `name` (its event destinations count bounces and
    /// complaints), or with none.
    pub fn with_configuration_set(mut self, name: Option<String>) -> Self {
        self.configuration_set = name;
        self
    }

    /// The SES and DynamoDB clients from an SDK configuration, with `KEYGATE_SES_CONFIGURATION_SET`. Makes no
    /// network call.
    pub fn from_config(config: &Config, aws: &aws_config::SdkConfig) -> Self {
        Self::new(
            SesClient::new(aws),
            Store::new(aws_sdk_dynamodb::Client::new(aws), config.table_name.clone()),
            config.mail_from.clone(),
            config.app_url.clone(),
        )
        .with_configuration_set(config.ses_configuration_set.clone())
    }

    /// Delivers a batch of SQS records, one after the other (SES rates are low), and returns the message ids that
    /// failed, for SQS to retry (`batchItemFailures`). Decoys, duplicates and malformed messages are not failures.
    /// DynamoDB round trips: one per email sent (the claim), two when SES fails (the claim and its release).
    pub async fn deliver(&self, records: &[SqsMessage], now: UnixTime) -> Vec<String> {
        let mut failures = Vec::new();
        for record in records {
            let Some(message_id) = record.message_id.as_deref() else {
                // SQS always names its messages; without an id there is nothing to retry by.
                tracing::warn!("outbox record without a message id dropped");
                continue;
            };
            let body = record.body.as_deref().unwrap_or_default();
            if self.deliver_one(message_id, body, now).await == Outcome::Failed {
                failures.push(message_id.to_owned());
            }
        }
        failures
    }

    /// Delivers one queued message, counted as `MailSent` or `MailFailed` (decoys and duplicates are neither).
    pub async fn deliver_one(&self, message_id: &str, body: &str, now: UnixTime) -> Outcome {
        let outcome = self.deliver_uncounted(message_id, body, now).await;
        match outcome {
            Outcome::Sent => telemetry::mail_sent(),
            Outcome::Failed | Outcome::Malformed => telemetry::mail_failed(),
            Outcome::AlreadySent | Outcome::Decoy => {}
        }
        outcome
    }

    async fn deliver_uncounted(&self, message_id: &str, body: &str, now: UnixTime) -> Outcome {
        // Parsed into a Value first, so the envelope borrows unescaped strings from it.
        let value = match serde_json::from_str::<serde_json::Value>(body) {
            Ok(value) => value,
            Err(err) => return malformed(message_id, &err),
        };
        let envelope = match Envelope::deserialize(&value) {
            Ok(envelope) => envelope,
            Err(err) => return malformed(message_id, &err),
        };
        if envelope.v != VERSION {
            tracing::warn!(
                message_id,
                version = envelope.v,
                "outbox message of another version dropped"
            );
            return Outcome::Malformed;
        }
        if matches!(envelope.mail, Mail::Decoy) {
            return Outcome::Decoy;
        }
        let Ok(to) = Email::parse(envelope.to) else {
            tracing::warn!(message_id, "outbox message with an invalid recipient dropped");
            return Outcome::Malformed;
        };
        match mail_sent::claim(&self.store, message_id, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(message_id, "email already sent; not sent again");
                return Outcome::AlreadySent;
            }
            Err(err) => {
                tracing::error!(message_id, error = ?err, "could not claim an email; it will be retried");
                return Outcome::Failed;
            }
        }
        match self.send(&to, envelope.mail.render(&self.app_url)).await {
            Ok(()) => {
                tracing::info!(message_id, to = ?to, "email sent");
                Outcome::Sent
            }
            Err(err) => {
                tracing::error!(message_id, to = ?to, error = ?err, "SES did not take an email; it will be retried");
                if let Err(err) = mail_sent::release(&self.store, message_id).await {
                    // The retry will find the claim and skip the email: say so loudly.
                    tracing::error!(message_id, error = ?err, "could not release the claim of an unsent email");
                }
                Outcome::Failed
            }
        }
    }

    /// One SES SendEmail with a text and an HTML part.
    async fn send(&self, to: &Email, rendered: Rendered) -> Result<(), Error> {
        let content = |data: String| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| Error::dependency("building an email", e))
        };
        let message = Message::builder()
            .subject(content(rendered.subject)?)
            .body(
                Body::builder()
                    .text(content(rendered.text)?)
                    .html(content(rendered.html)?)
                    .build(),
            )
            .build();
        self.ses
            .send_email()
            .from_email_address(&self.from)
            .set_configuration_set_name(self.configuration_set.clone())
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| Error::dependency("ses SendEmail", e))?;
        Ok(())
    }
}

/// Logs a message that cannot be read, by its id and the kind of fault only: serde's messages quote the input.
fn malformed(message_id: &str, err: &serde_json::Error) -> Outcome {
    tracing::warn!(message_id, fault = ?err.classify(), "malformed outbox message dropped");
    Outcome::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::outbox::encode;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;

    /// A delivery whose every AWS call fails at once: whatever needs no call must still succeed.
    fn offline() -> Delivery {
        offline_recording(Recorder::default())
    }

    /// Records the body of each SES request once serialised (before credentials are needed), then stops it.
    #[derive(Debug, Clone, Default)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Intercept for Recorder {
        fn name(&self) -> &'static str {
            "Recorder"
        }

        fn read_after_serialization(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let body = context.request().body().bytes().unwrap_or_default();
            self.0.lock().unwrap().push(String::from_utf8_lossy(body).into_owned());
            Err("recorded, not sent".into())
        }
    }

    fn offline_recording(recorder: Recorder) -> Delivery {
        let aws = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(&aws).interceptor(recorder).build();
        Delivery::new(
            SesClient::from_conf(ses),
            Store::new(aws_sdk_dynamodb::Client::new(&aws), "t".to_owned()),
            "no-reply@example.com".to_owned(),
            "https://app.example.com".to_owned(),
        )
    }

    #[tokio::test]
    async fn decoys_and_malformed_messages_need_no_call_and_are_not_retried() {
        let delivery = offline();
        let to = Email::parse("ada@example.com").unwrap();
        let decoy = encode(&to, Mail::Decoy).unwrap();
        assert_eq!(delivery.deliver_one("m1", &decoy, 0).await, Outcome::Decoy);
        let valid = encode(&to, Mail::LoginCode { code: "123456" }).unwrap();
        for body in [
            "",
            "not json",
            "[]",
            r#"{"v": 1}"#,
            r#"{"v": 1, "to": "ada@example.com", "mail": {"kind": "no_such_mail"}}"#,
            r#"{"v": 1, "to": "ada@example.com", "mail": {"kind": "login_code"}}"#,
            r#"{"v": 1, "to": "not an address", "mail": {"kind": "login_code", "code": "123456"}}"#,
            &valid.replacen(r#""v":1"#, r#""v":2"#, 1),
        ] {
            assert_eq!(delivery.deliver_one("m2", body, 0).await, Outcome::Malformed, "{body}");
        }
        // A readable email does need the calls, and with none reachable it goes back to the queue.
        assert_eq!(delivery.deliver_one("m3", &valid, 0).await, Outcome::Failed);
    }

    #[tokio::test]
    async fn emails_name_the_configuration_set_when_one_is_set() {
        let to = Email::parse("ada@example.com").unwrap();
        for set in [Some("keygate-mail"), None] {
            let recorder = Recorder::default();
            let delivery = offline_recording(recorder.clone()).with_configuration_set(set.map(str::to_owned));
            let rendered = Mail::LoginCode { code: "123456" }.render("https://app.example.com");
            assert!(delivery.send(&to, rendered).await.is_err());
            let bodies = recorder.0.lock().unwrap().clone();
            assert_eq!(bodies.len(), 1, "{bodies:?}");
            let request: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
            assert_eq!(
                request["Destination"]["ToAddresses"],
                serde_json::json!(["ada@example.com"])
            );
            assert_eq!(
                request.get("ConfigurationSetName").and_then(|v| v.as_str()),
                set,
                "{request}"
            );
        }
    }
}
