//! Admin operations called by back-office services: who may call them, and what they do to an account.
