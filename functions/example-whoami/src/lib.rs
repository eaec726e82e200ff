//! `GET /v1/example/whoami`: an example of a downstream route behind the keygate Lambda authorizer. It trusts
//! the context API Gateway passes from the authorizer and echoes the caller's identity.
//!
//! DynamoDB round trips: 0.

use keygate::{http, State};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _, Response};

/// Serves one request.
pub async fn handle(_state: &State, req: Request) -> Response<Body> {
    let identity = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().map(|a| a.fields.clone()),
        _ => None,
    };
    match identity.filter(|fields| fields.contains_key("sub")) {
        Some(fields) => http::json(200, &serde_json::json!({ "caller": fields })),
        // Only reachable when the route is deployed without its authorizer.
        None => http::respond(&req, Err(keygate::Error::InvalidToken("Authentication is required."))),
    }
}
