//! The whole keygate API on one port. Each HTTP request becomes a real API Gateway HTTP API (payload 2.0) event,
//! goes through lambda_http's own event conversion, and reaches the same `handle` that Lambda calls.

pub mod functions;
pub mod mailer;
pub mod setup;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use keygate::State;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use keygate::routes::{self, Match};

/// API Gateway's payload limit.
const MAX_EVENT_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One answer of the server, as an [`Observer`] sees it just before it is sent.
#[derive(Debug)]
pub struct Exchange<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's path as sent (still percent-encoded), without the query.
    pub path: &'a str,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub headers: &'a hyper::HeaderMap,
    /// The answer's body.
    pub body: &'a [u8],
}

/// Sees every answer before it is sent: the end-to-end tests check each one against openapi.yaml.
pub type Observer = Arc<dyn Fn(&Exchange<'_>) + Send + Sync>;

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<State>) -> std::io::Result<()> {
    serve_observed(listener, state, None).await
}

/// Serves the API on `listener` until the task is dropped, showing every answer to `observer` first.
pub async fn serve_observed(
    listener: TcpListener,
    state: Arc<State>,
    observer: Option<Observer>,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        // Without this, delayed ACKs add ~40 ms to every small response.
        stream.set_nodelay(true)?;
        let state = Arc::clone(&state);
        let observer = observer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                let observer = observer.clone();
                async move { Ok::<_, Infallible>(handle(&state, req, peer, observer.as_deref()).await) }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection ended");
            }
        });
    }
}

async fn handle(
    state: &State,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    observer: Option<&(dyn Fn(&Exchange<'_>) + Send + Sync)>,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let response = route(state, req, peer).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    // As each Lambda does after its invocation; nothing is written where no collector is installed (the tests).
    keygate::telemetry::flush();
    if let Some(observe) = observer {
        observe(&Exchange {
            method: &method,
            path: &path,
            status: response.status().as_u16(),
            headers: response.headers(),
            body: response.body(),
        });
    }
    response.map(Full::new)
}

async fn route(state: &State, req: hyper::Request<Incoming>, peer: SocketAddr) -> hyper::Response<Bytes> {
    // What no route matches goes to `api-fallback`, as API Gateway sends it to the `$default` route.
    let (index, params) = match routes::find(req.method().as_str(), req.uri().path()) {
        Match::Found(index, params) => (Some(index), params),
        Match::MethodNotAllowed(_) | Match::NotFound => (None, Vec::new()),
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_EVENT_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain_error(413, "payload_too_large", "The request body is too large."),
    };
    let route = index.and_then(|index| routes::ROUTES.get(index).copied());
    let route_key = route.map_or_else(
        || "$default".to_owned(),
        |(method, template, _)| format!("{method} {template}"),
    );
    let mut event = api_gateway_event(&parts, &body, peer, &route_key, &params);
    if route.is_some_and(|(_, template, _)| routes::AUTHORIZED_ROUTES.contains(&template)) {
        if let Err(response) = authorize(state, &mut event).await {
            return response;
        }
    }
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(err) => {
            tracing::error!(error = %err, "the event did not convert");
            return plain_error(400, "invalid_request", "The request could not be read.");
        }
    };
    let function = route.map_or("api-fallback", |(_, _, function)| function);
    let client = keygate::http::client_info(&request, state.config.trusted_proxy.as_ref());
    let serve = async {
        match index {
            Some(index) => functions::dispatch(index, state, request).await,
            None => Some(api_fallback::handle(&request)),
        }
    };
    match keygate::metrics::FUNCTION
        .scope(function, keygate::http::serving(client, serve))
        .await
    {
        Some(response) => to_hyper(response),
        None => plain_error(404, "not_found", "Not found."),
    }
}

/// Runs the Lambda authorizer as API Gateway would: no `Authorization` header is 401 without invoking it, a deny
/// is 403, and an allow puts its context at `requestContext.authorizer.lambda`.
async fn authorize(state: &State, event: &mut Value) -> Result<(), hyper::Response<Bytes>> {
    let Some(identity) = keygate::authorizer::authorization_header(event).map(str::to_owned) else {
        return Err(gateway_message(401, "Unauthorized"));
    };
    let mut request = event.clone();
    request["type"] = json!("REQUEST");
    request["identitySource"] = json!([identity]);
    let decision = keygate::metrics::FUNCTION
        .scope("authorizer", authorizer::handle(state, request))
        .await;
    if decision["isAuthorized"] != json!(true) {
        return Err(gateway_message(403, "Forbidden"));
    }
    event["requestContext"]["authorizer"] = json!({ "lambda": decision["context"] });
    Ok(())
}

fn gateway_message(status: u16, message: &str) -> hyper::Response<Bytes> {
    let mut response = hyper::Response::new(Bytes::from(json!({ "message": message }).to_string()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::FORBIDDEN);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Builds an API Gateway HTTP API payload 2.0 event, as API Gateway would send it.
pub fn api_gateway_event(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    route_key: &str,
    path_params: &[(String, String)],
) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (percent_decode(key), percent_decode(value));
        match query.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(key, Value::String(value));
            }
        }
    }
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now_ms = std::time::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let is_text = std::str::from_utf8(body).is_ok();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": parts.headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": keygate::secret::random_b64(12),
            "routeKey": route_key,
            "stage": "$default",
            "timeEpoch": now_ms,
        },
        "isBase64Encoded": !is_text,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = Value::Object(
            path_params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(percent_decode(v))))
                .collect(),
        );
    }
    if !body.is_empty() {
        event["body"] = Value::String(match std::str::from_utf8(body) {
            Ok(text) => text.to_owned(),
            Err(_) => STANDARD.encode(body),
        });
    }
    event
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'+') => out.push(b' '),
            Some(b'%') => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            Some(&b) => out.push(b),
            None => {}
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn to_hyper(response: lambda_http::Response<lambda_http::Body>) -> hyper::Response<Bytes> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, bytes)
}

/// An error the local router answers itself, in keygate's error shape (request id included, as the functions'
/// errors carry one).
fn plain_error(status: u16, code: &str, message: &str) -> hyper::Response<Bytes> {
    let body = json!({
        "error": { "code": code, "message": message },
        "request_id": keygate::secret::random_b64(12),
    })
    .to_string();
    let mut response = hyper::Response::new(Bytes::from(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::NOT_FOUND);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_strings() {
        assert_eq!(percent_decode("a%40b.com"), "a@b.com");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn events_convert_through_lambda_http() {
        use lambda_http::RequestExt as _;
        let req = hyper::Request::post("/v1/x/abc?email=a%40b.com")
            .header("user-agent", "curl/8")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let peer: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let event = api_gateway_event(
            &parts,
            b"{\"a\":1}",
            peer,
            "POST /v1/x/{id}",
            &[("id".into(), "abc".into())],
        );
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(
            request.query_string_parameters_ref().and_then(|q| q.first("email")),
            Some("a@b.com")
        );
        assert_eq!(request.path_parameters_ref().and_then(|p| p.first("id")), Some("abc"));
        assert_eq!(
            keygate::http::client_info(&request, None).ip.as_deref(),
            Some("127.0.0.2")
        );
        assert_eq!(request.body().as_ref(), b"{\"a\":1}");
    }
}
