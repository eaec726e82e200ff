//! A minimal AWS Lambda Runtime API, enough to run a real function binary the way Lambda does and time it:
//! init (spawn to the first `GET /next`), first response (spawn to the first response), warm invocations, and
//! peak RSS (VmHWM).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cost;

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Mutex};

/// What one run of a function measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Spawn to the first `GET /next`.
    pub init: Duration,
    /// Spawn to the first response.
    pub first_response: Duration,
    /// Every warm invocation, event handed over to response received.
    pub warm: Vec<Duration>,
    /// Peak resident set size in KiB.
    pub peak_rss_kib: u64,
    /// Status codes the function answered, to catch a benchmark of errors.
    pub statuses: Vec<u64>,
}

impl Measurement {
    /// Median warm latency.
    pub fn warm_median(&self) -> Duration {
        let mut sorted = self.warm.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

enum Message {
    Next(Instant),
    Response(Instant, Bytes),
}

struct Runtime {
    events: Mutex<mpsc::Receiver<Bytes>>,
    messages: mpsc::UnboundedSender<Message>,
}

async fn serve(runtime: Arc<Runtime>, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        let _ = runtime.messages.send(Message::Next(Instant::now()));
        let event = runtime.events.lock().await.recv().await.unwrap_or_default();
        return hyper::Response::builder()
            .header(
                "lambda-runtime-aws-request-id",
                format!("bench-{}", keygate::secret::random_b64(6)),
            )
            .header("lambda-runtime-deadline-ms", "9999999999999")
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .header("content-type", "application/json")
            .body(Full::new(event))
            .unwrap();
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if path.ends_with("/response") || path.ends_with("/error") {
        let _ = runtime.messages.send(Message::Response(Instant::now(), body));
    } else {
        eprintln!("runtime API: unexpected {path}: {}", String::from_utf8_lossy(&body));
    }
    hyper::Response::builder()
        .status(202)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Runs `command` as a Lambda function: one cold invocation, then `warm` more. `next_event` makes each event
/// from the previous response (so refresh can use the rotated token).
pub async fn run_function(
    mut command: tokio::process::Command,
    warm: usize,
    mut next_event: impl FnMut(Option<&Value>) -> Value,
) -> Measurement {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (event_tx, event_rx) = mpsc::channel(1);
    let (message_tx, mut messages) = mpsc::unbounded_channel();
    let runtime = Arc::new(Runtime {
        events: Mutex::new(event_rx),
        messages: message_tx,
    });
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            // Without this, delayed ACKs add ~40 ms to every warm call.
            stream.set_nodelay(true).unwrap();
            let runtime = Arc::clone(&runtime);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let runtime = Arc::clone(&runtime);
                    async move { Ok::<_, Infallible>(serve(runtime, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    command
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = command.spawn().expect("spawn the function");
    let pid = child.id().unwrap_or_default();

    let mut init = None;
    let mut first_response = None;
    let mut warm_times = Vec::new();
    let mut statuses = Vec::new();
    let mut previous: Option<Value> = None;
    for invocation in 0..=warm {
        // Wait until the function asks for work, then hand it the event.
        loop {
            match tokio::time::timeout(Duration::from_secs(30), messages.recv()).await {
                Ok(Some(Message::Next(at))) => {
                    init.get_or_insert(at - spawned);
                    break;
                }
                Ok(Some(Message::Response(..))) => {}
                _ => panic!("the function never asked for an event (crashed at start?)"),
            }
        }
        let event = next_event(previous.as_ref());
        let handed = Instant::now();
        event_tx.send(Bytes::from(event.to_string())).await.unwrap();
        let (at, body) = loop {
            match tokio::time::timeout(Duration::from_secs(30), messages.recv()).await {
                Ok(Some(Message::Response(at, body))) => break (at, body),
                Ok(Some(Message::Next(_))) => {}
                _ => panic!("the function did not answer"),
            }
        };
        if invocation == 0 {
            first_response = Some(at - spawned);
        } else {
            warm_times.push(at - handed);
        }
        let response: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        statuses.push(
            response["statusCode"]
                .as_u64()
                .unwrap_or(if response["isAuthorized"] == true { 200 } else { 0 }),
        );
        previous = Some(response);
    }
    // Wait for the next poll so the process is idle, then read its high-water mark.
    let _ = tokio::time::timeout(Duration::from_secs(5), messages.recv()).await;
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or_default();
    let _ = child.kill().await;
    server.abort();
    Measurement {
        init: init.unwrap_or_default(),
        first_response: first_response.unwrap_or_default(),
        warm: warm_times,
        peak_rss_kib,
        statuses,
    }
}

/// Reads an API Gateway HTTP API v2 event fixture from tests/fixtures.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
