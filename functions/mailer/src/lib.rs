//! The mailer: an SQS event source on the mail outbox. Renders each queued email and sends it through SES, and
//! answers with the message ids to retry (`ReportBatchItemFailures`), so a failed email is retried alone and a
//! sent one is never sent twice. Decoys and malformed messages are dropped.
//!
//! DynamoDB round trips: 1 per email sent (the claim), 2 when SES fails (the claim and its release), 0 for a
//! decoy or a malformed message.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use keygate::mail::Delivery;
use keygate::Clock;

/// Delivers one batch.
pub async fn handle(delivery: &Delivery, clock: &Clock, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message_id in delivery.deliver(&event.records, clock.now()).await {
        response.add_failure(message_id);
    }
    response
}
