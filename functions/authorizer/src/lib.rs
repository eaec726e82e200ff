//! The API Gateway HTTP API Lambda authorizer (payload 2.0, simple responses). It takes the event as raw JSON,
//! so no event shape can make it fail: anything it cannot read is a deny.
//!
//! DynamoDB round trips: 1 for a JWT (verified against the cached keys, then its session and user in one strongly
//! consistent BatchGetItem, so a revoked session is denied at once), 2 for a PAT (the token, its owner's token
//! epoch; plus a `last_used_at` write at most once an hour per token); 2 for a scoped token (the token, its
//! creator); 0 for a PAT or scoped token whose checksum fails (or a scoped token with an X-Namespace). An
//! `X-Namespace` header on a token without a database costs one more read, at most every 30 seconds per
//! namespace (cached).

use keygate::{authorizer, State};
use serde_json::Value;

/// Decides on one authorizer event.
pub async fn handle(state: &State, event: Value) -> Value {
    let decision = authorizer::decide(
        state,
        authorizer::authorization_header(&event),
        authorizer::namespace_header(&event),
        state.clock.now(),
    )
    .await;
    decision.to_response()
}
