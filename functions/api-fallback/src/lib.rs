//! API Gateway's `$default` route: every request that no route of the API matches. A path the API knows, asked
//! with a method it does not declare, is 405 `method_not_allowed` with `Allow` naming the path's methods (RFC 9110
//! §15.5.6); any other path is 404 `not_found`. Without this route API Gateway would answer both itself, with 404
//! `{"message": "Not Found"}`. The local server answers through the same `handle`.
//!
//! DynamoDB round trips: 0.

use keygate::routes::{self, Match};
use keygate::{http, Error};
use lambda_http::{Body, Request, RequestExt as _, Response};

/// Serves one request. It needs no state: no configuration, no AWS client.
pub fn handle(req: &Request) -> Response<Body> {
    // The path as API Gateway routed it: the request's URI has `.` and `..` segments resolved, which could turn a
    // path no route has into one that a route has.
    let refusal = match routes::find(req.method().as_str(), req.raw_http_path()) {
        Match::MethodNotAllowed(allowed) => Error::MethodNotAllowed(allowed.join(", ")),
        // A route API Gateway did not send to its function (none should exist): as if it did not.
        Match::Found(..) | Match::NotFound => Error::NotFound,
    };
    http::respond(req, Err(refusal))
}
