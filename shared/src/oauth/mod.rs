//! OAuth 2.0 at `/v1/oauth/token`: the client-credentials grant (RFC 6749 §4.4) and token exchange (RFC 8693).
