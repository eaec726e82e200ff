//! Resource-scoped anonymous tokens: opaque, checksummed, stored hashed, bound to one resource and its creator.
