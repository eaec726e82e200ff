//! The request side of the outbox: one SQS message per email, a small versioned JSON document
//! `{"v": 1, "to": "...", "mail": {"kind": "login_code", "code": "..."}, "pad": "..."}`, padded to a fixed size
//! class so a decoy and a real email look alike on the queue. The queue is SSE-encrypted; bodies are never logged.

use serde::{Deserialize, Serialize};

use super::Mail;
use crate::email::Email;
use crate::state::LazyClient;
use crate::Error;

/// Version of the queued document; the mailer drops any other.
pub const VERSION: u32 = 1;

/// Every queued document is padded to a multiple of this many bytes (one class for all of keygate's emails).
pub const SIZE_CLASS: usize = 1024;

/// One queued email, as it travels on SQS.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope<'a> {
    /// [`VERSION`].
    pub v: u32,
    /// The recipient, as [`Email`] normalised it.
    pub to: &'a str,
    /// The email and its parameters.
    #[serde(borrow)]
    pub mail: Mail<'a>,
    /// Filler up to the size class; carries nothing.
    #[serde(default)]
    pub pad: &'a str,
}

/// Puts emails on the outbox queue (`KEYGATE_MAIL_QUEUE_URL`). Holds no SES client: the mailer function sends.
pub struct Mailer {
    client: LazyClient<aws_sdk_sqs::Client>,
    queue_url: String,
}

impl Mailer {
    /// A mailer writing to `queue_url`, building its SQS client at the first send. Makes no network call.
    pub fn new(client: LazyClient<aws_sdk_sqs::Client>, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// Queues one email: exactly one SQS SendMessage, whatever the mail (a [`Mail::Decoy`] too), and no DynamoDB
    /// call. The mailer function sends it later, so an SES outage delays mail instead of failing the request.
    pub async fn send(&self, to: &Email, mail: Mail<'_>) -> Result<(), Error> {
        let body = encode(to, mail)?;
        self.client
            .get()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::dependency("sqs SendMessage", e))?;
        // The same line for a decoy and a real email.
        tracing::info!(to = ?to, "email queued");
        crate::telemetry::mail_queued();
        Ok(())
    }
}

/// The queued document for one email, padded to a multiple of [`SIZE_CLASS`] bytes.
pub fn encode(to: &Email, mail: Mail<'_>) -> Result<String, Error> {
    let mut envelope = Envelope {
        v: VERSION,
        to: to.as_str(),
        mail,
        pad: "",
    };
    let bare = serde_json::to_string(&envelope).map_err(|e| Error::dependency("encoding an outbox message", e))?;
    // The filler is plain ASCII, so each byte of it adds exactly one byte to the document.
    let target = bare.len().div_ceil(SIZE_CLASS).max(1) * SIZE_CLASS;
    let pad = "0".repeat(target - bare.len());
    envelope.pad = &pad;
    serde_json::to_string(&envelope).map_err(|e| Error::dependency("encoding an outbox message", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(value: &serde_json::Value) -> Envelope<'_> {
        Envelope::deserialize(value).unwrap()
    }

    #[test]
    fn every_mail_round_trips_in_one_size_class() {
        let to = Email::parse("Ada@Example.com").unwrap();
        let url = "https://app.example.com/magic-link?token=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        for mail in [
            Mail::RegistrationCode { code: "123456" },
            Mail::AlreadyRegistered,
            Mail::PasswordResetCode { code: "654321" },
            Mail::LoginCode { code: "111111" },
            Mail::MagicLink { url },
            Mail::Welcome { has_password: false },
            Mail::PasswordChanged { tokens_revoked: true },
            Mail::PasswordWasReset,
            Mail::Decoy,
        ] {
            let body = encode(&to, mail).unwrap();
            assert_eq!(body.len(), SIZE_CLASS, "{body}");
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            let envelope = decode(&value);
            assert_eq!((envelope.v, envelope.to), (VERSION, "ada@example.com"));
            let again = encode(&to, envelope.mail).unwrap();
            assert_eq!(again, body);
        }
        let value: serde_json::Value =
            serde_json::from_str(&encode(&to, Mail::LoginCode { code: "222333" }).unwrap()).unwrap();
        assert_eq!(
            value["mail"],
            serde_json::json!({ "kind": "login_code", "code": "222333" })
        );
        assert!(matches!(decode(&value).mail, Mail::LoginCode { code: "222333" }));
    }

    #[test]
    fn a_long_mail_takes_the_next_class() {
        let to = Email::parse("ada@example.com").unwrap();
        let url = format!("https://app.example.com/{}", "x".repeat(1_500));
        assert_eq!(
            encode(&to, Mail::MagicLink { url: &url }).unwrap().len(),
            2 * SIZE_CLASS
        );
    }

    #[test]
    fn escaped_strings_decode() {
        // Parsed into a Value first, as the mailer does, so an escaped string still borrows.
        let to = Email::parse("ada@example.com").unwrap();
        let url = "https://app.example.com/\"quoted\"\\path";
        let body = encode(&to, Mail::MagicLink { url }).unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(matches!(decode(&value).mail, Mail::MagicLink { url: decoded } if decoded == url));
    }
}
