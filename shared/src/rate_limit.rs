//! Per-subject request limits over fixed windows, counted atomically in DynamoDB.
//!
//! Fixed windows, not sliding: one `ADD` on one item per check is a single round trip and needs no read, and
//! the worst case (a burst straddling a boundary) is a bounded 2× the limit for one window, which is fine for
//! a brute-force brake. A sliding log would cost a read and a write per request.

use crate::clock::UnixTime;
use crate::config::RateLimits;
use crate::email::Email;
use crate::http::ClientInfo;
use crate::store::rate_limits::{self, Budget};
use crate::store::Store;
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

/// Which per-address mail budget an email spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A code or a link: what the owner needs to sign in or recover.
    Code,
    /// An invitation (or the notice an address with an account gets instead): a budget of its own, so that any
    /// tenant inviting an address cannot spend the code budget its owner needs to recover.
    Invitation,
    /// A registration code: a budget of its own, so that registering an address never spends, nor reveals
    /// through a 429 elsewhere, the code budget of the other send endpoints.
    Registration,
    /// A notice that carries nothing to redeem; a smaller budget of its own, so a flood of notices cannot use up
    /// the budget of the mail the owner needs.
    Notice,
}

impl RateLimits {
    /// The hourly budget of `kind` for one address, with the minimum spacing between two emails.
    fn mail_budget<'a>(&self, kind: MailKind, email: &'a Email, now: UnixTime) -> Budget<'a> {
        let (window_start, window_end) = window_bounds(now, 3_600);
        let (rule, limit) = match kind {
            MailKind::Code => ("mail-code", self.mail_per_hour),
            MailKind::Registration => ("mail-register", self.mail_per_hour),
            MailKind::Invitation => ("mail-invite", self.notices_per_hour),
            MailKind::Notice => ("mail-notice", self.notices_per_hour),
        };
        Budget {
            rule,
            subject: email.as_str(),
            window_start,
            window_end,
            limit,
            min_interval: i64::from(self.mail_interval_seconds),
        }
    }
}

/// The window containing `now`: `[start, end)`.
pub fn window_bounds(now: UnixTime, window: i64) -> (UnixTime, UnixTime) {
    let window = window.max(1);
    let start = now - now.rem_euclid(window);
    (start, start + window)
}

/// The answer of a limit that refuses: 429 with the seconds to wait, counted as `RateLimited`. Every limit that
/// refuses an answer builds its error here.
pub fn refused(retry_after: i64) -> Error {
    crate::telemetry::rate_limited();
    Error::RateLimited { retry_after }
}

/// Counts this request against `rule` for `subject`; 429 with the seconds until the window ends when over.
pub async fn check(store: &Store, rule: &Rule, subject: &str, now: UnixTime) -> Result<(), Error> {
    let (start, end) = window_bounds(now, rule.window);
    match rate_limits::hit(store, rule.name, subject, start, end).await {
        Ok(hits) if hits > i64::from(rule.limit) => Err(refused(end - now)),
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

/// Counts this request against `rule` for the client's IP (API Gateway's `sourceIp`). IPv6 clients are counted
/// per /64, the smallest block a subscriber is usually given: one host can use every address in it.
pub async fn check_client_ip(store: &Store, rule: &Rule, client: &ClientInfo, now: UnixTime) -> Result<(), Error> {
    let subject = client.ip.as_deref().map_or_else(|| "unknown".to_owned(), ip_subject);
    check(store, rule, &subject, now).await
}

/// The rate-limit subject of a client address: the address itself for IPv4, its /64 for IPv6.
pub fn ip_subject(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => ip.to_owned(),
    }
}

/// The limits of the endpoints that email a code or a link to an address the caller names: the per-IP rule named
/// `name`, then the address's code budget. The budget is spent for every address, with or without an account,
/// so a 429 reveals nothing; a refused request spends nothing. Two round trips.
pub async fn check_send(
    store: &Store,
    limits: &RateLimits,
    name: &'static str,
    client: &ClientInfo,
    email: &Email,
    now: UnixTime,
) -> Result<(), Error> {
    check_client_ip(store, &limits.send_rule(name), client, now).await?;
    match spend_mail(store, limits, MailKind::Code, email, now).await? {
        None => Ok(()),
        Some(retry_after) => Err(refused(retry_after)),
    }
}

/// Spends one email of `kind` to `email` from its hourly budget: `None` when spent, `Some(seconds)` to wait when
/// refused (and nothing spent). One round trip.
pub async fn spend_mail(
    store: &Store,
    limits: &RateLimits,
    kind: MailKind,
    email: &Email,
    now: UnixTime,
) -> Result<Option<i64>, Error> {
    rate_limits::spend(store, &limits.mail_budget(kind, email, now), now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(ip_subject("203.0.113.7"), "203.0.113.7");
        assert_eq!(ip_subject("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(ip_subject("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(ip_subject("2001:db8:1:3::1"), ip_subject("2001:db8:1:2::1"));
        assert_eq!(ip_subject("::ffff:198.51.100.1"), "198.51.100.1");
        assert_eq!(ip_subject("not an ip"), "not an ip");
    }

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
