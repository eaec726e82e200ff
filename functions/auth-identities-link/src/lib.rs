//! `POST /v1/auth/identities/link`: not built yet.

use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(_state: &State, req: Request) -> Response<Body> {
    http::respond(&req, Err(Error::NotFound))
}
