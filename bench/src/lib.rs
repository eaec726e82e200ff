//! A minimal AWS Lambda Runtime API, enough to run a real function binary the way Lambda does and time it:
//! init (spawn to the first `GET /next`), first response (spawn to the first response), warm invocations, and
//! peak RSS (VmHWM).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cost;
pub mod floor;

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

/// One cold invocation: a fresh process's init and first response.
#[derive(Debug, Clone, Copy)]
pub struct Cold {
    /// Spawn to the first `GET /next`.
    pub init: Duration,
    /// Spawn to the first response.
    pub first_response: Duration,
}

/// What the runs of one function measured: several fresh processes, then warm invocations of the last one.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// One entry per fresh process.
    pub cold: Vec<Cold>,
    /// Every warm invocation, event handed over to response received.
    pub warm: Vec<Duration>,
    /// Peak resident set size in KiB, the highest of the processes (the warm one, in practice).
    pub peak_rss_kib: u64,
    /// Status codes the function answered, to catch a benchmark of errors.
    pub statuses: Vec<u64>,
}

/// The median of `values` (the upper one of an even count); zero when empty.
pub fn median(values: &[Duration]) -> Duration {
    percentile(values, 50.0)
}

/// The nearest-rank `p`th percentile of `values`; zero when empty.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of plain numbers (ratios); NaN when empty.
pub fn median_f64(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Measurement {
    /// Median init over the fresh processes.
    pub fn init(&self) -> Duration {
        median(&self.cold.iter().map(|c| c.init).collect::<Vec<_>>())
    }

    /// Median first response over the fresh processes.
    pub fn first_response(&self) -> Duration {
        median(&self.cold.iter().map(|c| c.first_response).collect::<Vec<_>>())
    }

    /// The lowest and highest init, to show the spread.
    pub fn init_range(&self) -> (Duration, Duration) {
        let inits = self.cold.iter().map(|c| c.init);
        (inits.clone().min().unwrap_or_default(), inits.max().unwrap_or_default())
    }

    /// Median warm latency.
    pub fn warm_median(&self) -> Duration {
        median(&self.warm)
    }

    /// Medians of the first and the last 10 warm invocations: apart, they show a function slowing as the run goes.
    pub fn warm_drift(&self) -> (Duration, Duration) {
        let n = self.warm.len().min(10);
        (median(&self.warm[..n]), median(&self.warm[self.warm.len() - n..]))
    }

    /// 95th percentile of warm latency.
    pub fn warm_p95(&self) -> Duration {
        percentile(&self.warm, 95.0)
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

/// What one invocation answered.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Event handed over to response received.
    pub latency: Duration,
    /// Process spawn to response received.
    pub since_spawn: Duration,
    /// The response document.
    pub response: Value,
    /// Its status code (`isAuthorized` as 200 or 0 for an authorizer, 0 when there is none).
    pub status: u64,
}

/// A function binary running under the harness, between invocations.
pub struct Process {
    child: tokio::process::Child,
    pid: u32,
    spawned: Instant,
    init: Option<Duration>,
    events: mpsc::Sender<Bytes>,
    messages: mpsc::UnboundedReceiver<Message>,
    server: tokio::task::JoinHandle<()>,
}

impl Process {
    /// Starts `command` as Lambda would: a Runtime API of its own on a free port.
    pub async fn spawn(mut command: tokio::process::Command) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (event_tx, event_rx) = mpsc::channel(1);
        let (message_tx, messages) = mpsc::unbounded_channel();
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
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = command.spawn().expect("spawn the function");
        let pid = child.id().unwrap_or_default();
        Self {
            child,
            pid,
            spawned,
            init: None,
            events: event_tx,
            messages,
            server,
        }
    }

    /// Spawn to the first `GET /next` (known once the process has asked for its first event).
    pub fn init(&self) -> Duration {
        self.init.unwrap_or_default()
    }

    /// Waits until the function asks for work, hands it `event`, and waits for its answer.
    pub async fn invoke(&mut self, event: &Value) -> Invocation {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.messages.recv()).await {
                Ok(Some(Message::Next(at))) => {
                    self.init.get_or_insert(at - self.spawned);
                    break;
                }
                Ok(Some(Message::Response(..))) => {}
                _ => panic!("the function never asked for an event (crashed at start?)"),
            }
        }
        let handed = Instant::now();
        self.events.send(Bytes::from(event.to_string())).await.unwrap();
        let (at, body) = loop {
            match tokio::time::timeout(Duration::from_secs(30), self.messages.recv()).await {
                Ok(Some(Message::Response(at, body))) => break (at, body),
                Ok(Some(Message::Next(_))) => {}
                _ => panic!("the function did not answer"),
            }
        };
        let response: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let status = response["statusCode"]
            .as_u64()
            .unwrap_or(match response["isAuthorized"] {
                Value::Bool(true) => 200,
                Value::Bool(false) => 403,
                // The mailer answers its batch item failures: none is a success.
                _ if response["batchItemFailures"].as_array().is_some_and(Vec::is_empty) => 200,
                _ => 0,
            });
        Invocation {
            latency: at - handed,
            since_spawn: at - self.spawned,
            response,
            status,
        }
    }

    /// Waits for the next poll so the process is idle, reads its high-water mark (KiB), and ends it.
    pub async fn finish(mut self) -> u64 {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.messages.recv()).await {
                Ok(Some(Message::Next(_))) | Err(_) | Ok(None) => break,
                Ok(Some(Message::Response(..))) => {}
            }
        }
        let peak = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or_default();
        let _ = self.child.kill().await;
        self.server.abort();
        peak
    }
}

/// Runs a function the way the report measures it: `cold` fresh processes answer one event each (init and first
/// response), and the last of them then answers `warm` more. `next_event` makes each event from the previous
/// response, across processes too (so refresh can always present the token the last call returned).
pub async fn measure(
    command: impl Fn() -> tokio::process::Command,
    cold: usize,
    warm: usize,
    mut next_event: impl FnMut(Option<&Value>) -> Value,
) -> Measurement {
    let mut measurement = Measurement::default();
    let mut previous: Option<Value> = None;
    for n in 0..cold.max(1) {
        let mut process = Process::spawn(command()).await;
        let event = next_event(previous.as_ref());
        let first = process.invoke(&event).await;
        measurement.cold.push(Cold {
            init: process.init(),
            first_response: first.since_spawn,
        });
        measurement.statuses.push(first.status);
        previous = Some(first.response);
        if n + 1 == cold.max(1) {
            for _ in 0..warm {
                let event = next_event(previous.as_ref());
                let answer = process.invoke(&event).await;
                measurement.warm.push(answer.latency);
                measurement.statuses.push(answer.status);
                previous = Some(answer.response);
            }
        }
        measurement.peak_rss_kib = measurement.peak_rss_kib.max(process.finish().await);
    }
    measurement
}

/// Two implementations of one function measured side by side in one process tree: their fresh processes spawned
/// alternately, then both kept warm and invoked alternately (the order swapped every pair), so that whatever
/// else the machine is doing hits both alike. Returns both measurements and the ratio `a / b` of each warm pair.
pub async fn measure_pair(
    command_a: impl Fn() -> tokio::process::Command,
    command_b: impl Fn() -> tokio::process::Command,
    cold: usize,
    warm: usize,
    event: &Value,
) -> (Measurement, Measurement, Vec<f64>) {
    let (mut a, mut b) = (Measurement::default(), Measurement::default());
    let mut last = None;
    for n in 0..cold.max(1) {
        let mut pair = Vec::new();
        let commands: [(&dyn Fn() -> tokio::process::Command, &mut Measurement); 2] =
            [(&command_a, &mut a), (&command_b, &mut b)];
        for (command, measurement) in commands {
            let mut process = Process::spawn(command()).await;
            let first = process.invoke(event).await;
            measurement.cold.push(Cold {
                init: process.init(),
                first_response: first.since_spawn,
            });
            measurement.statuses.push(first.status);
            if n + 1 == cold.max(1) {
                pair.push(process);
            } else {
                measurement.peak_rss_kib = measurement.peak_rss_kib.max(process.finish().await);
            }
        }
        if !pair.is_empty() {
            last = Some(pair);
        }
    }
    let mut ratios = Vec::new();
    if let Some(mut pair) = last {
        let (first, second) = pair.split_at_mut(1);
        let (process_a, process_b) = (&mut first[0], &mut second[0]);
        for i in 0..warm {
            let (answer_a, answer_b) = if i % 2 == 0 {
                let x = process_a.invoke(event).await;
                (x, process_b.invoke(event).await)
            } else {
                let y = process_b.invoke(event).await;
                (process_a.invoke(event).await, y)
            };
            a.warm.push(answer_a.latency);
            a.statuses.push(answer_a.status);
            b.warm.push(answer_b.latency);
            b.statuses.push(answer_b.status);
            ratios.push(answer_a.latency.as_secs_f64() / answer_b.latency.as_secs_f64().max(1e-9));
        }
        let mut processes = pair.into_iter();
        if let (Some(pa), Some(pb)) = (processes.next(), processes.next()) {
            a.peak_rss_kib = a.peak_rss_kib.max(pa.finish().await);
            b.peak_rss_kib = b.peak_rss_kib.max(pb.finish().await);
        }
    }
    (a, b, ratios)
}

/// Reads an API Gateway HTTP API v2 event fixture from tests/fixtures.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
