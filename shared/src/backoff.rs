//! Password backoff per account, across all client IPs: after five consecutive failures each further attempt must
//! wait, doubling from one second up to fifteen minutes. The delays are bounded, so an attacker cannot lock a
//! real user out for good; at NIST's ceiling of 100 consecutive failures password login stops until the owner
//! proves the address (password reset, emailed code or magic link), which clears the count.
//!
//! Every attempt, in every state, first claims its slot with one conditional write that counts it as a failure
//! ([`login_failures::claim`]); only then does argon2 run. A success clears the record in the transaction that
//! acts on it, a failure sets the wait that follows it. So attempts sent at once from many addresses get no more
//! verdicts than the backoff allows, and the ceiling cannot be reached in seconds.

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::clock::UnixTime;
use crate::store::login_failures::{self, Claim, Limits, LoginFailures, FORGET_AFTER_SECONDS};
use crate::store::Store;
use crate::Error;

/// Failures allowed before the backoff starts.
pub const FREE_FAILURES: i64 = 5;
/// Longest wait between attempts.
pub const MAX_DELAY_SECONDS: i64 = 900;
/// NIST SP 800-63B's limit of consecutive failures.
pub const CEILING: i64 = 100;

/// The wait that follows `failures` consecutive failures.
pub fn delay_after(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let exponent = u32::try_from((failures - FREE_FAILURES).min(20)).unwrap_or(20);
    2_i64.pow(exponent).min(MAX_DELAY_SECONDS)
}

/// A claimed password attempt against one address, waiting for its verdict.
#[derive(Debug)]
#[must_use = "an attempt must be settled: `failed`, or `succeeded_item` in the transaction that acts on it"]
pub struct Attempt {
    email: String,
    failures: i64,
    claimed_at: UnixTime,
    before: Box<LoginFailures>,
}

/// Claims an attempt for `email`: 429 with the wait while the backoff holds, 403 `account_locked` at the
/// ceiling. One round trip, which can run concurrently with the request's other reads.
pub async fn claim(store: &Store, email: &str, now: UnixTime) -> Result<Attempt, Error> {
    counted(claim_below(store, email, CEILING, now).await)
}

/// Claims an attempt for a service account (`key` names it within its tenant): the same backoff, but never the
/// lock, which only an emailed proof could lift and a service account has no email. One round trip.
pub async fn claim_without_lock(store: &Store, key: &str, now: UnixTime) -> Result<Attempt, Error> {
    counted(claim_below(store, key, i64::MAX, now).await)
}

/// Counts a refused claim as `BackoffRefused`, once per public claim: a pair whose two records both refuse is one
/// refused attempt.
fn counted<T>(claimed: Result<T, Error>) -> Result<T, Error> {
    if matches!(claimed, Err(Error::RateLimited { .. } | Error::AccountLocked)) {
        crate::telemetry::backoff_refused();
    }
    claimed
}

async fn claim_below(store: &Store, email: &str, ceiling: i64, now: UnixTime) -> Result<Attempt, Error> {
    let limits = Limits {
        free: FREE_FAILURES,
        ceiling,
        forget_after: FORGET_AFTER_SECONDS,
    };
    match login_failures::claim(store, email, limits, now).await? {
        Claim::Granted { failures, before } => Ok(Attempt {
            email: email.to_owned(),
            failures,
            claimed_at: now,
            before,
        }),
        Claim::Refused(record) if record.failures >= ceiling => Err(Error::AccountLocked),
        Claim::Refused(record) => Err(Error::RateLimited {
            retry_after: (record.next_attempt_at - now).max(1),
        }),
    }
}

impl Attempt {
    /// The attempt failed at `now`: set the wait before the next one, counted from the verdict. One round trip,
    /// none while failures are free.
    pub async fn failed(self, store: &Store, now: UnixTime) -> Result<(), Error> {
        let delay = delay_after(self.failures);
        if delay == 0 {
            return Ok(());
        }
        login_failures::hold_until(store, &self.email, self.failures, now.max(self.claimed_at) + delay).await
    }

    /// The attempt was refused before its verdict (by the per-IP limit, say): give its slot back, so requests that
    /// never reach argon2 cannot walk an account to the lockout ceiling. One round trip.
    pub async fn release(self, store: &Store) -> Result<(), Error> {
        login_failures::release(store, &self.email, self.failures, &self.before).await
    }

    /// The first factor was right but a second is due: the attempt stays counted as a failure until the second
    /// factor's verdict clears the record, so that a password alone never resets the backoff that limits guesses
    /// at the second factor.
    pub fn count_until_second_factor(self) {}

    /// The attempt succeeded: a transaction item that clears the record, to write with the session.
    pub fn succeeded_item(self, store: &Store) -> Result<TransactWriteItem, Error> {
        self.clear_item(store)
    }

    /// The item of [`Self::succeeded_item`], for a transaction that may fail and be rebuilt: the attempt stays
    /// claimed until the one that is written.
    pub(crate) fn clear_item(&self, store: &Store) -> Result<TransactWriteItem, Error> {
        login_failures::clear_item(store, &self.email)
    }
}

/// Two claimed attempts settled together: the account's login backoff, and a second record that limits the same
/// attempts in its own way (see [`claim_second_factor`] and [`claim_directory`]).
#[derive(Debug)]
#[must_use = "paired attempts must be settled: `failed`, `release`, or their items in the transaction"]
pub struct PairedAttempt {
    login: Attempt,
    other: Attempt,
}

/// A claimed guess at a second factor. It counts in two records: the account's login backoff (wrong codes count
/// toward it, as wrong passwords do), and a record of second-factor guesses alone, which no first factor clears
/// (an emailed code, a link or a password reset each clear the login backoff). Only a right second factor clears
/// both, so a thief holding the password or the mailbox gets no fresh guesses at the second factor by proving the
/// first one again. The second record never locks (it backs off up to fifteen minutes between guesses), so a
/// stranger cannot lock an owner out of their second factor.
pub type SecondFactorAttempt = PairedAttempt;

/// A password attempt at an address routed to a directory. It counts in the account's login backoff, as any
/// password attempt does, and in a guard of the directory's own: at most the entry's `max_failures` failures within
/// its `failure_window_seconds` of the last one (fifteen minutes by default), refused with 429 before any bind. Directories lock accounts after a few
/// failures (Active Directory often after five to ten), so keygate stops first, and nobody on the internet can
/// lock a company's accounts through it.
pub type DirectoryAttempt = PairedAttempt;

/// Claims a guess at the second factor of the account whose login backoff key is `login_key`, in both records
/// concurrently. Refused (429, or 403 `account_locked` at the login backoff's ceiling) when either refuses. One
/// round-trip time (two writes).
pub async fn claim_second_factor(
    store: &Store,
    login_key: &str,
    user_id: &str,
    now: UnixTime,
) -> Result<SecondFactorAttempt, Error> {
    let factor_key = login_failures::second_factor_key(user_id);
    counted(
        claim_pair(
            store,
            claim_below(store, login_key, CEILING, now),
            claim_below(store, &factor_key, i64::MAX, now),
        )
        .await,
    )
}

/// Claims a password attempt at `email`, routed to the directory of the configuration entry `idp`, in the login
/// backoff and the directory's guard concurrently (see [`DirectoryAttempt`]): at most `max_failures` failures
/// within `window_seconds` of the last one. One round-trip time (two writes).
pub async fn claim_directory(
    store: &Store,
    email: &str,
    idp: &str,
    max_failures: i64,
    window_seconds: i64,
    now: UnixTime,
) -> Result<DirectoryAttempt, Error> {
    let guard = claim_guard(
        store,
        login_failures::directory_key(idp, email),
        max_failures,
        window_seconds,
        now,
    );
    counted(claim_pair(store, claim_below(store, email, CEILING, now), guard).await)
}

/// Claims a password attempt at the directory entry whose stable id is `directory_id`, whatever address found it:
/// the same guard as [`claim_directory`]'s, counted per entry, so that a person's other addresses (a second `mail`,
/// a principal name) give no more binds before the directory would lock them. One round trip.
pub async fn claim_directory_entry(
    store: &Store,
    idp: &str,
    directory_id: &str,
    max_failures: i64,
    window_seconds: i64,
    now: UnixTime,
) -> Result<Attempt, Error> {
    // "entry:" cannot begin an address (no ':' in one), so an entry's key is never an address's.
    let key = login_failures::directory_key(idp, &format!("entry:{directory_id}"));
    counted(claim_guard(store, key, max_failures, window_seconds, now).await)
}

/// A directory guard's claim: granted below `max_failures`, else 429 until `window_seconds` after the last one.
async fn claim_guard(
    store: &Store,
    key: String,
    max_failures: i64,
    window_seconds: i64,
    now: UnixTime,
) -> Result<Attempt, Error> {
    let limits = Limits {
        free: max_failures,
        ceiling: max_failures,
        forget_after: window_seconds,
    };
    match login_failures::claim(store, &key, limits, now).await? {
        Claim::Granted { failures, before } => Ok(Attempt {
            email: key,
            failures,
            claimed_at: now,
            before,
        }),
        Claim::Refused(record) => Err(Error::RateLimited {
            retry_after: (record.expires_at - now).max(1),
        }),
    }
}

/// Both claims, or neither: a claim granted beside a refused one is given back.
async fn claim_pair(
    store: &Store,
    login: impl std::future::Future<Output = Result<Attempt, Error>>,
    other: impl std::future::Future<Output = Result<Attempt, Error>>,
) -> Result<PairedAttempt, Error> {
    match tokio::join!(login, other) {
        (Ok(login), Ok(other)) => Ok(PairedAttempt { login, other }),
        (Ok(granted), Err(refused)) | (Err(refused), Ok(granted)) => {
            granted.release(store).await?;
            Err(refused)
        }
        (Err(refused), Err(_)) => Err(refused),
    }
}

impl PairedAttempt {
    /// The guess was wrong: both records set their wait. One round-trip time.
    pub async fn failed(self, store: &Store, now: UnixTime) -> Result<(), Error> {
        let (login, other) = tokio::join!(self.login.failed(store, now), self.other.failed(store, now));
        login.and(other)
    }

    /// Nothing was judged: give both slots back. One round-trip time.
    pub async fn release(self, store: &Store) -> Result<(), Error> {
        let (login, other) = tokio::join!(self.login.release(store), self.other.release(store));
        login.and(other)
    }

    /// The guess was right: transaction items that clear both records.
    pub fn succeeded_items(self, store: &Store) -> Result<[TransactWriteItem; 2], Error> {
        Ok([self.login.succeeded_item(store)?, self.other.succeeded_item(store)?])
    }

    /// The directory accepted the password: a transaction item that clears its guard, and the login attempt, which
    /// the sign-in settles as any password sign-in does (a second factor may still be due).
    pub fn directory_accepted(self, store: &Store) -> Result<(Attempt, TransactWriteItem), Error> {
        let cleared = self.other.succeeded_item(store)?;
        Ok((self.login, cleared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
