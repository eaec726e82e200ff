//! keygate's outbound HTTPS client (identity providers, the breached-password range API): rustls over aws-lc-rs
//! with the system's trusted roots (the stack the AWS SDK links; no OpenSSL, no ring), built at the first request. Every request is bounded: five
//! seconds in all, bodies of at most 256 KiB, and https only, except plain http to a loopback host (a test
//! harness or `make dev`). Redirects are not followed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::federation::config::is_allowed_url;

/// How long one request may take, connecting and reading the body included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The largest body read. A JWKS or a token response is a few KiB.
pub const MAX_BODY: usize = 256 * 1024;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why a request failed. Each names a kind of failure and nothing of what was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Neither https nor http to a loopback host.
    #[error("URL not allowed (https, or http to a loopback host)")]
    NotAllowed,
    /// The client could not be built.
    #[error("no HTTP client")]
    NoClient,
    /// Took longer than [`TIMEOUT`].
    #[error("timed out")]
    Timeout,
    /// Could not connect (or the TLS handshake failed).
    #[error("could not connect")]
    Connect,
    /// The request failed after connecting.
    #[error("request failed")]
    Request,
    /// The answer's status was not 200.
    #[error("answered status {0}")]
    Status(u16),
    /// The answer was unreadable or larger than [`MAX_BODY`].
    #[error("answer unreadable or too large")]
    Body,
}

/// A lazily built client, shared by every request of the process.
#[derive(Default)]
pub struct Fetcher {
    /// `None` inside once the client could not be built.
    client: OnceLock<Option<HttpClient>>,
}

impl Fetcher {
    /// GETs `url` asking for JSON: the body of a 200 answer.
    pub async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        self.get_with(url, &[("accept", "application/json")]).await
    }

    /// GETs `url` with `headers`: the body of a 200 answer.
    pub async fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Result<Bytes, FetchError> {
        let mut request = hyper::Request::get(url).header(hyper::header::USER_AGENT, "keygate");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|_| FetchError::NotAllowed)?;
        self.send(url, request).await
    }

    /// Whether a first request to an allowed URL has built the client.
    pub fn is_built(&self) -> bool {
        matches!(self.client.get(), Some(Some(_)))
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded`: the body of a 200 answer.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<Bytes, FetchError> {
        let body = fields
            .iter()
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let request = hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "keygate")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| FetchError::NotAllowed)?;
        self.send(url, request).await
    }

    async fn send(&self, url: &str, request: hyper::Request<Full<Bytes>>) -> Result<Bytes, FetchError> {
        if !is_allowed_url(url) {
            return Err(FetchError::NotAllowed);
        }
        let client = self
            .client
            .get_or_init(build_client)
            .as_ref()
            .ok_or(FetchError::NoClient)?;
        let exchange = async {
            let response = client.request(request).await.map_err(|err| {
                if err.is_connect() {
                    FetchError::Connect
                } else {
                    FetchError::Request
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| FetchError::Body)?
                .to_bytes();
            if status == hyper::StatusCode::OK {
                Ok(body)
            } else {
                Err(FetchError::Status(status.as_u16()))
            }
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }
}

/// The client: the system's trusted roots for https, and plain http allowed by the connector (only loopback hosts
/// pass [`is_allowed_url`]). Without trusted roots (a machine with none), https requests fail to connect rather
/// than the client failing to exist, so loopback tests still run.
pub(crate) fn build_client() -> Option<HttpClient> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(TIMEOUT));
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(Arc::clone(&provider))
    {
        Ok(builder) => builder,
        Err(err) => {
            tracing::warn!(error = %err, "no trusted roots; outbound https will fail");
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .ok()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Some(Client::builder(TokioExecutor::new()).build(connector))
}

/// Percent-encodes everything but RFC 3986's unreserved characters: safe in a query and in a form body.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("a b&c=d/é+"), "a%20b%26c%3Dd%2F%C3%A9%2B");
    }

    #[tokio::test]
    async fn refuses_plain_http_to_other_hosts_before_connecting() {
        let fetcher = Fetcher::default();
        for url in [
            "http://example.com/keys",
            "ftp://127.0.0.1/keys",
            "file:///etc/passwd",
            "keys",
        ] {
            assert_eq!(fetcher.get(url).await, Err(FetchError::NotAllowed), "{url}");
        }
        assert!(fetcher.client.get().is_none(), "no client built for a refused URL");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/keys", listener.local_addr().unwrap());
        drop(listener);
        assert_eq!(Fetcher::default().get(&url).await, Err(FetchError::Connect));
    }
}
