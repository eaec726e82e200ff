//! `GET /.well-known/jwks.json`: the published public key set (both keys of AWSCURRENT and of AWSPREVIOUS).
//!
//! DynamoDB round trips: 0. The public-key secret is read only when the in-memory key cache is cold; this
//! function cannot read the private keys.

use keygate::{http, Error, State};
use lambda_http::{Body, Request, Response};

/// How long clients may cache the key set; shorter than the key cache so a rotation propagates promptly.
const MAX_AGE_SECONDS: u32 = 300;

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(&req, jwks(state).await)
}

async fn jwks(state: &State) -> Result<Response<Body>, Error> {
    let keys = state.keys.get(state.clock.now()).await?;
    Ok(http::public_json(
        &serde_json::json!({ "keys": keys.jwks() }),
        MAX_AGE_SECONDS,
    ))
}
