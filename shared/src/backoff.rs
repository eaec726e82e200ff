//! Login backoff per account, across all client IPs: after five consecutive failures each further attempt must
//! wait, doubling from one second up to fifteen minutes. The delays are bounded, so an attacker cannot lock a
//! real user out for good; at NIST's ceiling of 100 consecutive failures password login stops until the owner
//! proves the address (password reset, emailed code or magic link), which clears the count.

use crate::clock::UnixTime;
use crate::store::login_failures::LoginFailures;

/// Failures allowed before the backoff starts.
pub const FREE_FAILURES: i64 = 5;
/// Longest wait between attempts.
pub const MAX_DELAY_SECONDS: i64 = 900;
/// NIST SP 800-63B's limit of consecutive failures.
pub const CEILING: i64 = 100;

/// What the failure record allows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Fewer than five failures: go ahead.
    Open,
    /// In backoff, and the wait is over: one attempt may go ahead.
    Due,
    /// In backoff: wait this many seconds.
    Wait(i64),
    /// At the ceiling: the owner must prove the address.
    Locked,
}

/// The wait that follows `failures` consecutive failures.
pub fn delay_after(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let exponent = u32::try_from((failures - FREE_FAILURES).min(20)).unwrap_or(20);
    2_i64.pow(exponent).min(MAX_DELAY_SECONDS)
}

/// Decides whether an attempt may run now.
pub fn gate(record: Option<&LoginFailures>, now: UnixTime) -> Gate {
    let Some(record) = record.filter(|r| r.expires_at > now) else {
        return Gate::Open;
    };
    if record.failures >= CEILING {
        return Gate::Locked;
    }
    if record.failures < FREE_FAILURES {
        return Gate::Open;
    }
    let ready_at = record.last_failure_at + delay_after(record.failures);
    if now >= ready_at {
        Gate::Due
    } else {
        Gate::Wait(ready_at - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(failures: i64, last_failure_at: UnixTime) -> LoginFailures {
        LoginFailures {
            failures,
            last_failure_at,
            expires_at: last_failure_at + 86_400,
        }
    }

    #[test]
    fn delays_double_from_one_second_to_fifteen_minutes() {
        let delays: Vec<i64> = (0..=16).map(delay_after).collect();
        assert_eq!(
            delays,
            vec![0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
        assert_eq!(delay_after(99), 900);
        assert_eq!(delay_after(i64::MAX), 900);
    }

    #[test]
    fn the_gate_opens_when_the_wait_is_over() {
        assert_eq!(gate(None, 100), Gate::Open);
        assert_eq!(gate(Some(&record(4, 100)), 100), Gate::Open);
        assert_eq!(gate(Some(&record(5, 100)), 100), Gate::Wait(1));
        assert_eq!(gate(Some(&record(5, 100)), 101), Gate::Due);
        assert_eq!(gate(Some(&record(8, 100)), 104), Gate::Wait(4));
        assert_eq!(gate(Some(&record(8, 100)), 108), Gate::Due);
    }

    #[test]
    fn the_ceiling_locks_and_a_quiet_day_forgets() {
        assert_eq!(
            gate(Some(&record(100, 100)), 100_000),
            Gate::Open,
            "expired records are absent"
        );
        assert_eq!(gate(Some(&record(100, 100)), 200), Gate::Locked);
    }
}
