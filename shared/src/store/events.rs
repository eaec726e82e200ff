//! Security and admin events (`EVENTS#<user id>` / `<at>#<id>`), kept for a retention period.
