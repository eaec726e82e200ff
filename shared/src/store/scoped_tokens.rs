//! Scoped tokens in DynamoDB (`SCOPED#<id>`), listed per creator.
