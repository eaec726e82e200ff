//! lambda_http glue: JSON in and out, bearer extraction, client facts, errors → responses.

use lambda_http::http::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use secrecy::ExposeSecret as _;

use crate::config::TrustedProxy;
use crate::Error;

/// Largest request body accepted (DESIGN §4).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Parses the JSON body into `T`; malformed JSON is 400 `malformed_json`, a missing or mistyped field 400
/// `invalid_request`.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Error> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge(MAX_BODY_BYTES));
    }
    let value = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => Error::InvalidRequest(describe_data_error(&err)),
        _ => Error::MalformedJson,
    })?;
    // serde reads a struct from a JSON array of its fields in order too, so `[null]` would pass as `{}`.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Error::InvalidRequest("The body must be a JSON object.".to_owned()));
    }
    Ok(value)
}

/// A field that tells absent (`None`, with `#[serde(default)]`) from JSON `null` (`Some(None)`).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// An optional integer field (`#[serde(default, deserialize_with = "http::whole_number")]` on an `Option<i64>`)
/// that also takes a JSON number without a fraction, `30.0` or `3e1`: JSON Schema's `integer` allows them, so
/// clients and generated code send them. `null` is absent.
pub fn whole_number<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <Option<WholeNumber> as serde::Deserialize>::deserialize(deserializer).map(|n| n.map(|WholeNumber(n)| n))
}

/// [`whole_number`] for a field that tells absent (`None`) from JSON `null` (`Some(None)`), as [`nullable`] does.
pub fn nullable_whole_number<'de, D>(deserializer: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    whole_number(deserializer).map(Some)
}

/// An `i64` read from any JSON number with no fraction.
struct WholeNumber(i64);

impl<'de> serde::Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WholeNumberVisitor)
    }
}

struct WholeNumberVisitor;

impl serde::de::Visitor<'_> for WholeNumberVisitor {
    type Value = WholeNumber;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a whole number")
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<WholeNumber, E> {
        Ok(WholeNumber(value))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<WholeNumber, E> {
        i64::try_from(value)
            .map(WholeNumber)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(value), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<WholeNumber, E> {
        // 2^63 is the first float past i64::MAX; every whole float below it and at or above -2^63 fits exactly.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if value.fract() == 0.0 && (-LIMIT..LIMIT).contains(&value) {
            #[allow(clippy::cast_possible_truncation)] // whole and in range, checked above
            Ok(WholeNumber(value as i64))
        } else {
            Err(E::invalid_type(serde::de::Unexpected::Float(value), &self))
        }
    }
}

/// Like [`json_body`], for endpoints whose body is optional: an empty body is `T::default()`.
pub fn optional_json_body<T: DeserializeOwned + Default>(req: &Request) -> Result<T, Error> {
    if req.body().as_ref().iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        json_body(req)
    }
}

/// serde's messages can quote the offending value (a password, say), so only field-naming messages pass.
fn describe_data_error(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    if message.starts_with("missing field") || message.starts_with("unknown variant") && !message.contains('"') {
        format!("The request is invalid: {message}.")
    } else {
        "The request is invalid: a field has the wrong type.".to_owned()
    }
}

/// The `Authorization: Bearer` token, if any.
pub fn bearer_token(req: &Request) -> Option<&str> {
    parse_bearer(req.headers().get(AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization` header value of the Bearer scheme (RFC 6750; the scheme is case-insensitive).
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// One query-string parameter.
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// One path parameter (`{id}` in the route), or `""` when absent.
pub fn path_param<'a>(req: &'a Request, name: &str) -> &'a str {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .unwrap_or_default()
}

/// What we record about the client of a request.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// API Gateway's `sourceIp`: the TCP peer, never a client-controlled header.
    pub ip: Option<String>,
    /// The `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

tokio::task_local! {
    /// The client of the request being served. The bootstrap sets it once per request, so that every security
    /// event a flow records says where the request came from without each flow being handed it.
    static CLIENT: ClientInfo;
}

/// Serves `fut` as the request from `client` (see [`current_client`]).
pub async fn serving<F: std::future::Future>(client: ClientInfo, fut: F) -> F::Output {
    CLIENT.scope(client, fut).await
}

/// The client of the request being served; empty outside one (the scheduled jobs, the tests).
pub fn current_client() -> ClientInfo {
    CLIENT.try_with(Clone::clone).unwrap_or_default()
}

/// Header a trusted proxy adds to prove a request came through it.
pub const ORIGIN_VERIFY_HEADER: &str = "x-keygate-origin-verify";

/// Reads [`ClientInfo`]: the IP is API Gateway's `sourceIp`, unless the request came through the configured
/// trusted proxy (proven by its secret header), in which case it is the address that proxy reports.
pub fn client_info(req: &Request, proxy: Option<&TrustedProxy>) -> ClientInfo {
    let source_ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    let ip = proxy.and_then(|proxy| proxied_ip(req, proxy)).or(source_ip);
    let user_agent = req
        .headers()
        .get(lambda_http::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    ClientInfo { ip, user_agent }
}

fn proxied_ip(req: &Request, proxy: &TrustedProxy) -> Option<String> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let presented = header(ORIGIN_VERIFY_HEADER)?;
    if !crate::secret::ct_eq(presented, proxy.secret.expose_secret()) {
        return None;
    }
    // CloudFront-Viewer-Address is `ip:port`, IPv6 included (`2001:db8::1:443`): drop the last `:port`.
    let (ip, _port) = header(&proxy.ip_header)?.rsplit_once(':')?;
    ip.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default(),
    }
}

fn response(status: u16, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        lambda_http::http::StatusCode::from_u16(status).unwrap_or(lambda_http::http::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Token responses must not be cached (RFC 6749 §5.1); public documents override this.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// A JSON response.
pub fn json<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => response(status, Body::Binary(bytes)),
        Err(err) => {
            tracing::error!(error = %err, "serialising a response failed");
            response(
                500,
                Body::Text(r#"{"error":{"code":"internal_error","message":"Something went wrong."}}"#.into()),
            )
        }
    }
}

/// A JSON response that caches publicly for `max_age` seconds (JWKS, discovery).
pub fn public_json<T: Serialize>(value: &T, max_age: u32) -> Response<Body> {
    let mut response = json(200, value);
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
    response
}

/// An empty response (202, 204).
pub fn empty(status: u16) -> Response<Body> {
    let mut response = response(status, Body::Empty);
    response.headers_mut().remove(CONTENT_TYPE);
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    request_id: String,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

/// Turns a handler's result into the response API Gateway returns; errors become JSON with a stable code.
pub fn respond(req: &Request, result: Result<Response<Body>, Error>) -> Response<Body> {
    let err = match result {
        Ok(response) => return response,
        Err(err) => err,
    };
    let status = err.status();
    if status >= 500 {
        tracing::error!(code = err.code(), error = ?err, "request failed");
    } else {
        tracing::info!(code = err.code(), status, "request refused");
    }
    let body = ErrorBody {
        error: ErrorDetail {
            code: err.code(),
            message: err.to_string(),
        },
        request_id: request_id(req),
    };
    let mut response = json(status, &body);
    let headers = response.headers_mut();
    match &err {
        Error::InvalidToken(_) | Error::SessionRevoked => {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        Error::InsufficientScope(_) => {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="insufficient_scope""#),
            );
        }
        // Every 401 names a scheme (RFC 9110 §15.5.2): these are answers to a sign-in, whose tokens are Bearer.
        Error::InvalidCredentials | Error::PasskeyRejected(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::MethodNotAllowed(allow) => {
            if let Ok(value) = HeaderValue::from_str(allow) {
                headers.insert(ALLOW, value);
            }
        }
        Error::RateLimited { retry_after } => {
            if let Ok(value) = HeaderValue::from_str(&retry_after.max(&1).to_string()) {
                headers.insert(RETRY_AFTER, value);
            }
        }
        Error::Unavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Login {
        #[allow(dead_code)]
        email: String,
    }

    fn request(body: &str) -> Request {
        let mut req = Request::new(Body::Text(body.to_owned()));
        req.headers_mut()
            .insert(AUTHORIZATION, HeaderValue::from_static("bearer abc.def"));
        req
    }

    #[test]
    fn classifies_body_errors() {
        assert!(matches!(json_body::<Login>(&request("{")), Err(Error::MalformedJson)));
        assert!(matches!(json_body::<Login>(&request("")), Err(Error::MalformedJson)));
        assert!(matches!(
            json_body::<Login>(&request("{}")),
            Err(Error::InvalidRequest(_))
        ));
        assert!(json_body::<Login>(&request(r#"{"email":"a","extra":1}"#)).is_ok());
        assert!(matches!(
            json_body::<Login>(&request(r#" ["a"]"#)),
            Err(Error::InvalidRequest(_))
        ));
        let big = format!(r#"{{"email":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            json_body::<Login>(&request(&big)),
            Err(Error::PayloadTooLarge(_))
        ));
    }

    #[test]
    fn type_errors_do_not_echo_values() {
        #[derive(Debug, serde::Deserialize)]
        struct Secret {
            #[allow(dead_code)]
            n: u8,
        }
        let Err(Error::InvalidRequest(message)) = json_body::<Secret>(&request(r#"{"n":"hunter2secret"}"#)) else {
            panic!("expected invalid_request");
        };
        assert!(!message.contains("hunter2secret"));
    }

    #[test]
    fn integers_take_whole_numbers_of_any_spelling() {
        #[derive(Debug, serde::Deserialize)]
        struct Days {
            #[serde(default, deserialize_with = "whole_number")]
            days: Option<i64>,
            #[serde(default, deserialize_with = "nullable_whole_number")]
            expiry: Option<Option<i64>>,
        }
        let read = |body: &str| json_body::<Days>(&request(body)).map(|d| (d.days, d.expiry));
        assert_eq!(read(r#"{"days":30}"#).ok(), Some((Some(30), None)));
        assert_eq!(
            read(r#"{"days":30.0,"expiry":3e1}"#).ok(),
            Some((Some(30), Some(Some(30))))
        );
        assert_eq!(read(r#"{"days":-0.0,"expiry":null}"#).ok(), Some((Some(0), Some(None))));
        assert_eq!(read(r#"{"days":null}"#).ok(), Some((None, None)));
        for refused in [
            r#"{"days":30.5}"#,
            r#"{"days":"30"}"#,
            r#"{"days":true}"#,
            r#"{"days":1e300}"#,
            r#"{"days":9223372036854775808}"#,
            r#"{"expiry":9.3e18}"#,
        ] {
            assert!(matches!(read(refused), Err(Error::InvalidRequest(_))), "{refused}");
        }
    }

    #[test]
    fn trusts_the_proxy_header_only_with_the_secret() {
        let proxy = TrustedProxy {
            ip_header: "cloudfront-viewer-address".into(),
            secret: secrecy::SecretString::from("s".repeat(32)),
        };
        let mut req = request("");
        req.headers_mut().insert(
            "cloudfront-viewer-address",
            HeaderValue::from_static("203.0.113.9:51234"),
        );
        assert_eq!(client_info(&req, Some(&proxy)).ip, None, "no secret, no trust");
        req.headers_mut()
            .insert(ORIGIN_VERIFY_HEADER, HeaderValue::from_static("wrong"));
        assert_eq!(client_info(&req, Some(&proxy)).ip, None);
        let secret = HeaderValue::from_str(&"s".repeat(32)).unwrap();
        req.headers_mut().insert(ORIGIN_VERIFY_HEADER, secret);
        assert_eq!(client_info(&req, Some(&proxy)).ip.as_deref(), Some("203.0.113.9"));
        req.headers_mut()
            .insert("cloudfront-viewer-address", HeaderValue::from_static("2001:db8::1:443"));
        assert_eq!(client_info(&req, Some(&proxy)).ip.as_deref(), Some("2001:db8::1"));
        req.headers_mut()
            .insert("cloudfront-viewer-address", HeaderValue::from_static("not-an-ip:1"));
        assert_eq!(client_info(&req, Some(&proxy)).ip, None);
        assert_eq!(client_info(&req, None).ip, None);
    }

    #[test]
    fn reads_bearer_case_insensitively() {
        assert_eq!(bearer_token(&request("")), Some("abc.def"));
    }

    #[test]
    fn errors_carry_code_and_headers() {
        let req = request("");
        let res = respond(&req, Err(Error::RateLimited { retry_after: 7 }));
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[RETRY_AFTER], "7");
        let body: serde_json::Value = serde_json::from_slice(res.body().as_ref()).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
        let res = respond(&req, Err(Error::InvalidToken("x")));
        assert_eq!(res.status(), 401);
        assert!(res.headers()[WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
    }
}
