//! Per-subject request limits over fixed windows, counted atomically in DynamoDB.
//!
//! Fixed windows, not sliding: one `ADD` on one item per check is a single round trip and needs no read, and
//! the worst case (a burst straddling a boundary) is a bounded 2× the limit for one window, which is fine for
//! a brute-force brake. A sliding log would cost a read and a write per request.

use crate::clock::UnixTime;
use crate::config::RateLimits;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::store::{rate_limits, Store};
use crate::Error;

/// What to do when the counter cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreFailure {
    /// Refuse with 503: for endpoints that check secrets (login, codes), where an unlimited window is an attack.
    FailClosed,
    /// Let the request through: for low-risk endpoints, where availability matters more.
    FailOpen,
}

/// One limit.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable name, part of the counter key.
    pub name: &'static str,
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in seconds.
    pub window: i64,
    /// Behaviour when the counter write fails.
    pub on_store_failure: OnStoreFailure,
}

impl RateLimits {
    /// Endpoints that check a password or a code, per client IP.
    pub fn verify_rule(&self, name: &'static str) -> Rule {
        Rule {
            name,
            limit: self.verify_per_minute,
            window: 60,
            on_store_failure: OnStoreFailure::FailClosed,
        }
    }

    /// Endpoints that send email, per client IP.
    pub fn send_rule(&self, name: &'static str) -> Rule {
        Rule {
            name,
            limit: self.send_per_minute,
            window: 60,
            on_store_failure: OnStoreFailure::FailClosed,
        }
    }

    /// `check-registration`, per client IP.
    pub fn lookup_rule(&self) -> Rule {
        Rule {
            name: "check-registration",
            limit: self.lookup_per_minute,
            window: 60,
            on_store_failure: OnStoreFailure::FailClosed,
        }
    }

    /// Refresh and logout, per client IP: the tokens are 256-bit, so this only sheds load.
    pub fn refresh_rule(&self, name: &'static str) -> Rule {
        Rule {
            name,
            limit: self.refresh_per_minute,
            window: 60,
            on_store_failure: OnStoreFailure::FailOpen,
        }
    }
}

impl RateLimits {
    /// The two limits on email sent to one address, against inbox flooding: a short interval and an hourly cap.
    pub fn mail_rules(&self) -> [Rule; 2] {
        [
            Rule {
                name: "mail-interval",
                limit: self.mail_per_interval,
                window: i64::from(self.mail_interval_seconds),
                on_store_failure: OnStoreFailure::FailClosed,
            },
            Rule {
                name: "mail-hour",
                limit: self.mail_per_hour,
                window: 3_600,
                on_store_failure: OnStoreFailure::FailClosed,
            },
        ]
    }
}

/// The window containing `now`: `[start, end)`.
pub fn window_bounds(now: UnixTime, window: i64) -> (UnixTime, UnixTime) {
    let window = window.max(1);
    let start = now - now.rem_euclid(window);
    (start, start + window)
}

/// Counts this request against `rule` for `subject`; 429 with the seconds until the window ends when over.
pub async fn check(store: &Store, rule: &Rule, subject: &str, now: UnixTime) -> Result<(), Error> {
    let (start, end) = window_bounds(now, rule.window);
    match rate_limits::hit(store, rule.name, subject, start, end).await {
        Ok(hits) if hits > i64::from(rule.limit) => Err(Error::RateLimited { retry_after: end - now }),
        Ok(_) => Ok(()),
        Err(err) => match rule.on_store_failure {
            OnStoreFailure::FailClosed => Err(err),
            OnStoreFailure::FailOpen => {
                tracing::warn!(rule = rule.name, error = ?err, "rate-limit counter unavailable; allowing");
                Ok(())
            }
        },
    }
}

/// Counts this request against `rule` for the client's IP (API Gateway's `sourceIp`).
pub async fn check_client_ip(store: &Store, rule: &Rule, client: &ClientInfo, now: UnixTime) -> Result<(), Error> {
    check(store, rule, client.ip.as_deref().unwrap_or("unknown"), now).await
}

/// The limits of every endpoint that emails an address: the per-IP rule named `name`, then the two per-address
/// rules. Three round trips.
pub async fn check_send(
    store: &Store,
    limits: &RateLimits,
    name: &'static str,
    client: &ClientInfo,
    email: &Email,
    now: UnixTime,
) -> Result<(), Error> {
    check_client_ip(store, &limits.send_rule(name), client, now).await?;
    check_mail_address(store, limits, email, now).await
}

/// Counts an email to `email` against both mail rules. Every request counts, whether or not the address has an
/// account, so a 429 reveals nothing. Two counters, written concurrently (two round trips, one round-trip time).
pub async fn check_mail_address(store: &Store, limits: &RateLimits, email: &Email, now: UnixTime) -> Result<(), Error> {
    let [interval, hourly] = limits.mail_rules();
    let (a, b) = tokio::join!(
        check(store, &interval, email.as_str(), now),
        check(store, &hourly, email.as_str(), now)
    );
    match (a, b) {
        (Err(Error::RateLimited { retry_after: x }), Err(Error::RateLimited { retry_after: y })) => {
            Err(Error::RateLimited { retry_after: x.max(y) })
        }
        (Err(err), _) | (_, Err(err)) => Err(err),
        (Ok(()), Ok(())) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_multiples() {
        assert_eq!(window_bounds(0, 60), (0, 60));
        assert_eq!(window_bounds(59, 60), (0, 60));
        assert_eq!(window_bounds(60, 60), (60, 120));
        assert_eq!(window_bounds(61, 60), (60, 120));
        assert_eq!(window_bounds(1_700_000_039, 60), (1_699_999_980, 1_700_000_040));
    }

    #[test]
    fn retry_after_is_never_zero_inside_a_window() {
        for now in 0..120 {
            let (start, end) = window_bounds(now, 60);
            assert!(start <= now && now < end);
            assert!(end - now >= 1);
        }
    }

    #[test]
    fn degenerate_windows_do_not_divide_by_zero() {
        assert_eq!(window_bounds(5, 0), (5, 6));
    }
}
