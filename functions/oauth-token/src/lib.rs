//! `POST /v1/oauth/token`: OAuth 2.0's token endpoint, speaking RFC 6749 rather than keygate's JSON (DESIGN §4):
//! the body is `application/x-www-form-urlencoded` (anything else is `invalid_request`), and errors are
//! `{"error", "error_description"}` (RFC 6749 §5.2). Every answer is `Cache-Control: no-store`, `Pragma: no-cache`.
//!
//! - `grant_type=client_credentials` (RFC 6749 §4.4): a service account authenticates as the client
//!   (`client_secret_basic` or `client_secret_post`; `client_id` is its id, `client_secret` its password), with an
//!   optional `scope` (within its role's; default all of them) and `database_id` or `namespace` (a database of its
//!   tenant). 200 `{access_token, token_type, expires_in, scope}`, no refresh token: a sessionless JWT stamped with
//!   the account's session epoch. Failed client authentication of any kind is 401 `invalid_client` with
//!   `WWW-Authenticate: Basic`; a frontend account `unauthorized_client`. The per-IP limit and the service
//!   login's backoff (the same record) apply: 429 `rate_limited` with `Retry-After`.
//! - `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): `subject_token` (a session's or a
//!   client-credentials access JWT), `subject_token_type` (an access token's), `resource` (`<type>:<id>` of a
//!   declared type, else `invalid_target`) and `scope` (within the subject's and the deployment's anonymous scopes,
//!   else `invalid_scope`). No client authentication: the subject token is the credential. 200 `{access_token,
//!   issued_token_type, token_type, expires_in, scope}`: a JWT of at most 15 minutes whose audience is the
//!   resource.
//!
//! DynamoDB round trips:
//! - client credentials: 4 in 3 round-trip times: the IP counter and the client's user item, concurrently (with
//!   the database by id or namespace beside them when one is named: 5); the backoff claim; one transaction
//!   clearing the failures. A refused secret past the five free failures writes its wait instead of the clear; a
//!   refusal after a right secret (frontend, database, scope) gives the claimed slot back instead.
//! - token exchange: 1, the subject's check (one BatchGetItem of the session and the user, or one GetItem of the
//!   user for a client-credentials subject); none when the request is refused before it.

use keygate::oauth::{self, client_credentials, exchange, TokenRequest};
use keygate::State;
use lambda_http::{Body, Request, Response};

/// Serves one request.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    let now = state.clock.now();
    match TokenRequest::from_http(&req) {
        Ok(TokenRequest::ClientCredentials(request)) => {
            let client = state.client_info(&req);
            oauth::respond(client_credentials::grant(state, request, &client, now).await)
        }
        Ok(TokenRequest::Exchange(request)) => oauth::respond(exchange::exchange(state, request, now).await),
        Err(err) => oauth::respond::<()>(Err(err)),
    }
}
