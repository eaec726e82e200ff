//! The mail outbox: a request queues its email on SQS and the mailer sends it through SES. An SES outage delays
//! mail and loses none; SQS's duplicate deliveries send once; malformed messages and decoys send nothing.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use keygate::email::Email;
use keygate::mail::{outbox, Delivery, Mail, Outcome};
use keygate::store::Store;
use keygate_e2e::{unique_email, TestApp, PASSWORD};
use serde_json::{json, Value};

async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A queue of the test's own, so no other test's draining delivers its mail behind its back.
async fn private_queue() -> String {
    let config = keygate_e2e::defaults();
    let name = format!(
        "{}-mail-{}",
        config.table_name,
        keygate::secret::random_b64(9).replace(['-', '_'], "x")
    );
    aws_sdk_sqs::Client::new(&aws().await)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// The mailer's delivery with SES working, on clients of its own.
async fn working(app: &TestApp) -> Delivery {
    Delivery::from_config(&app.state.config, &aws().await)
}

/// The mailer's delivery during an SES outage: its SES endpoint refuses connections.
async fn ses_outage(app: &TestApp) -> Delivery {
    let aws = aws().await;
    let ses = aws_sdk_sesv2::config::Builder::from(&aws)
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    Delivery::new(
        aws_sdk_sesv2::Client::from_conf(ses),
        Store::new(aws_sdk_dynamodb::Client::new(&aws), app.state.config.table_name.clone()),
        app.state.config.mail_from.clone(),
        app.state.config.app_url.clone(),
    )
}

fn message_id() -> String {
    format!("test-{}", keygate::secret::random_b64(12))
}

fn failures(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn an_ses_outage_delays_mail_and_loses_none() {
    let queue = private_queue().await;
    let app = TestApp::spawn_with(|c| c.mail_queue_url = queue.clone()).await;
    let email = unique_email();
    // The request never meets SES: it answers as usual, and its email waits on the queue.
    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
    let messages = app.outbox.receive().await.unwrap();
    assert_eq!(messages.len(), 1);
    let id = messages[0].message_id().unwrap().to_owned();
    let event = app.outbox.event(&messages).unwrap();

    // The mailer meets the outage: the message is a batch failure, its claim is released, nothing was sent.
    let response = mailer::handle(&ses_outage(&app).await, &app.state.clock, event.clone()).await;
    assert_eq!(failures(&response), [id.as_str()]);
    assert!(app.items(&format!("MAILSENT#{id}")).await.is_empty());
    assert!(app.sent_emails_to(&email).await.is_empty());

    // Lambda leaves a failed message on the queue; it comes back after the visibility timeout (at once here).
    assert_eq!(app.outbox.in_flight().await.unwrap(), 1);
    app.outbox
        .sqs()
        .change_message_visibility()
        .queue_url(&queue)
        .set_receipt_handle(messages[0].receipt_handle().map(str::to_owned))
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();

    // SES is back: the retry sends it, once, and the code in it works.
    let emails = app.emails_to(&email).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(app.outbox.receive().await.unwrap().is_empty());
    assert_eq!(app.outbox.in_flight().await.unwrap(), 0);
    let code = app.code_sent_to(&email, "verification code").await;
    assert_eq!(app.verify(&email, &code).await.status, 200);

    // SQS delivers at least once: the same message again sends nothing more, and is no failure.
    let response = mailer::handle(&working(&app).await, &app.state.clock, event).await;
    assert!(failures(&response).is_empty());
    let codes_sent = app
        .sent_emails_to(&email)
        .await
        .iter()
        .filter(|(_, body)| body.contains("verification code"))
        .count();
    assert_eq!(codes_sent, 1);
}

#[tokio::test]
async fn a_message_id_is_sent_once_even_when_delivered_twice_at_once() {
    let app = TestApp::spawn().await;
    let delivery = working(&app).await;
    let to = unique_email();
    let body = outbox::encode(
        &Email::parse(&to).unwrap(),
        Mail::PasswordChanged { tokens_revoked: false },
    )
    .unwrap();
    let id = message_id();
    let now = app.state.clock.now();
    let (first, second) = tokio::join!(
        delivery.deliver_one(&id, &body, now),
        delivery.deliver_one(&id, &body, now)
    );
    let mut outcomes = [first, second];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Outcome::AlreadySent, Outcome::Sent]);
    assert_eq!(delivery.deliver_one(&id, &body, now).await, Outcome::AlreadySent);
    assert_eq!(app.sent_emails_to(&to).await.len(), 1);
    assert_eq!(app.items(&format!("MAILSENT#{id}")).await.len(), 1);

    // Another message is another email, even with the same content.
    assert_eq!(delivery.deliver_one(&message_id(), &body, now).await, Outcome::Sent);
    assert_eq!(app.sent_emails_to(&to).await.len(), 2);
}

#[tokio::test]
async fn malformed_messages_are_dropped_from_the_queue() {
    let queue = private_queue().await;
    let app = TestApp::spawn_with(|c| c.mail_queue_url = queue.clone()).await;
    let to = unique_email();
    let valid = outbox::encode(&Email::parse(&to).unwrap(), Mail::LoginCode { code: "123456" }).unwrap();
    for body in [
        "not json".to_owned(),
        json!({ "v": 1, "to": to, "mail": { "kind": "shutdown" } }).to_string(),
        valid.replacen(r#""v":1"#, r#""v":7"#, 1),
        json!({ "v": 1, "to": "not an address", "mail": { "kind": "login_code", "code": "123456" } }).to_string(),
    ] {
        app.outbox
            .sqs()
            .send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    app.deliver_mail().await;
    // Dropped, not left to come back: nothing received, nothing in flight, nothing sent, nothing claimed.
    assert!(app.outbox.receive().await.unwrap().is_empty());
    assert_eq!(app.outbox.in_flight().await.unwrap(), 0);
    assert!(app.sent_emails_to(&to).await.is_empty());
}

#[tokio::test]
async fn known_and_unknown_addresses_queue_one_message_and_decoys_send_nothing() {
    let app = TestApp::spawn().await;
    let (known, _) = app.signed_up_user().await;
    let unknown = unique_email();
    for (email, path, body) in [
        (
            &known,
            "/v1/auth/otp/send",
            json!({ "email": known, "purpose": "login" }),
        ),
        (
            &unknown,
            "/v1/auth/otp/send",
            json!({ "email": unknown, "purpose": "login" }),
        ),
        (&known, "/v1/auth/magic-link/send", json!({ "email": known })),
        (&unknown, "/v1/auth/magic-link/send", json!({ "email": unknown })),
        (&known, "/v1/auth/password-reset-request", json!({ "email": known })),
        (&unknown, "/v1/auth/password-reset-request", json!({ "email": unknown })),
    ] {
        app.sqs_calls.reset();
        assert_eq!(app.post(path, body).await.status, 202, "{path} {email}");
        assert_eq!(
            app.sqs_calls.snapshot().into_iter().collect::<Vec<_>>(),
            [("SendMessage".to_owned(), 1)],
            "{path}"
        );
    }
    // The registration code and the welcome, then the three above.
    assert_eq!(app.emails_to(&known).await.len(), 5);
    assert!(app.emails_to(&unknown).await.is_empty());

    // A decoy on its own: no email, and no claim either.
    let delivery = working(&app).await;
    let id = message_id();
    let decoy = outbox::encode(&Email::parse(&unknown).unwrap(), Mail::Decoy).unwrap();
    assert_eq!(
        delivery.deliver_one(&id, &decoy, app.state.clock.now()).await,
        Outcome::Decoy
    );
    assert!(app.items(&format!("MAILSENT#{id}")).await.is_empty());
    assert!(app.sent_emails_to(&unknown).await.is_empty());
}

fn fixture(first_id: &str, first_body: &str, second_id: &str, second_body: &str) -> SqsEvent {
    let path = format!("{}/fixtures/sqs_mail_event.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["Records"][0]["messageId"] = json!(first_id);
    event["Records"][0]["body"] = json!(first_body);
    event["Records"][1]["messageId"] = json!(second_id);
    event["Records"][1]["body"] = json!(second_body);
    serde_json::from_value(event).unwrap()
}

#[tokio::test]
async fn the_mailer_function_answers_an_sqs_event_with_its_failures() {
    let app = TestApp::spawn().await;
    let to = unique_email();
    let url = "https://app.example.com/magic-link?token=fixture";
    let body = outbox::encode(&Email::parse(&to).unwrap(), Mail::MagicLink { url }).unwrap();
    let (first, second) = (message_id(), message_id());
    let event = fixture(&first, &body, &second, "{\"not\": \"an outbox message\"}");

    // During an outage the readable message is reported for retry; the malformed one is dropped, not retried.
    let response = mailer::handle(&ses_outage(&app).await, &app.state.clock, event.clone()).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": first }] })
    );

    let response = mailer::handle(&working(&app).await, &app.state.clock, event).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [] })
    );
    let emails = app.sent_emails_to(&to).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].0, "Your sign-in link");
    assert!(emails[0].1.contains(url));
}

#[tokio::test]
async fn mail_reaches_ses_without_a_test_draining_it() {
    // `make dev` runs the same loop in the background: queued mail arrives on its own.
    let queue = private_queue().await;
    let app = TestApp::spawn_with(|c| c.mail_queue_url = queue.clone()).await;
    let outbox = std::sync::Arc::clone(&app.outbox);
    let state = std::sync::Arc::clone(&app.state);
    let poller = tokio::spawn(async move { outbox.run(&state.clock).await });
    let email = unique_email();
    assert_eq!(app.register(&email, PASSWORD).await.status, 202);
    let mut emails = Vec::new();
    for _ in 0..40 {
        emails = app.sent_emails_to(&email).await;
        if !emails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    poller.abort();
    assert_eq!(emails.len(), 1);
}
