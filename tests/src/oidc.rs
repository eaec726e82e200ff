//! A local OpenID issuer for the federation tests: discovery, a JWKS, an authorization and a token endpoint.
