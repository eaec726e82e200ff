//! `DELETE /v1/accounts/{id}/api-tokens/{tokenId}`: not built yet.

use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(_state: &State, req: Request) -> Response<Body> {
    http::respond(&req, Err(Error::NotFound))
}
