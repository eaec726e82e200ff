//! Found by the attacker review of issue 18 (performance round 2): login from a copy of the account on its email
//! marker, refresh tokens that name their owner.
