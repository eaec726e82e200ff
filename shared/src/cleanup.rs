//! The scheduled cleanup (`token-cleanup`, hourly by default): deletes every item whose expiry has passed, reading
//! only the `expiry` index's buckets from its checkpoint up to the current hour, so its cost follows the number of
//! expired items, never the table's size (DESIGN §6). DynamoDB's TTL deletes the same items eventually (within
//! days); this keeps the table, and every read that filters on expiry, lean on a schedule.
//!
//! Each delete is conditional on the item's expiry still being past, so a session refreshed during a run survives.
//! A run stops before its deadline and keeps its place in a checkpoint; the next run continues. Deleting twice is
//! harmless, so a run interrupted anywhere is simply repeated from the checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::clock::UnixTime;
use crate::store::cleanup::{self, Expired};
use crate::store::{expiry_bucket, EXPIRY_BUCKET_SECONDS};
use crate::{Error, State};

/// How far back a first run (no checkpoint yet) looks: items older than that were left to DynamoDB's TTL.
pub const FIRST_RUN_LOOKBACK_SECONDS: i64 = 7 * 86_400;

/// Personal access tokens and scoped tokens stay this long after they expire, so owners still see "expired".
pub const TOKENS_KEPT_AFTER_EXPIRY_SECONDS: i64 = crate::store::api_tokens::KEPT_AFTER_EXPIRY_SECONDS;

/// Items read per index page.
const PAGE: i32 = 500;

/// Deletes in flight at once.
const CONCURRENT_DELETES: usize = 16;

/// A run stops when less than this is left before its deadline.
const MARGIN: Duration = Duration::from_secs(10);

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Items deleted, by kind.
    pub deleted: BTreeMap<&'static str, u64>,
    /// Expired items left alone: their expiry moved since the index was read, or they were gone already.
    pub skipped: u64,
    /// Buckets finished.
    pub buckets: u64,
    /// Whether it reached the current hour (else it stopped for its deadline; the next run continues).
    pub finished: bool,
}

impl Report {
    /// All items deleted.
    pub fn total(&self) -> u64 {
        self.deleted.values().sum()
    }
}

/// Runs one pass: every bucket from the checkpoint to the current hour's, stopping when `time_left()` falls under
/// a safety margin. The checkpoint is written once, when the pass ends: the current hour's bucket when it got there
/// (items can still expire into it), else the bucket it stopped in (anything before is clean; deleting is
/// idempotent, so a crash only costs re-reading).
/// Round trips: the checkpoint, one query per bucket and page, one conditional delete per expired item, one
/// checkpoint write.
pub async fn run(state: &State, now: UnixTime, time_left: impl Fn() -> Duration) -> Result<Report, Error> {
    let store = &state.store;
    let current = expiry_bucket(now);
    let mut bucket = cleanup::checkpoint(store)
        .await?
        .unwrap_or_else(|| expiry_bucket(now - FIRST_RUN_LOOKBACK_SECONDS));
    let mut report = Report::default();
    while bucket <= current {
        let mut start = None;
        loop {
            if time_left() < MARGIN {
                // Every bucket before this one is clean; this one is read again from its start.
                cleanup::advance_checkpoint(store, bucket, now).await?;
                return Ok(report);
            }
            let page = cleanup::expired_page(store, bucket, now, start, PAGE).await?;
            let outcomes: Vec<(&'static str, bool)> = stream::iter(page.items)
                .map(|item| async move {
                    let kind = kind_of(&item);
                    let deleted = cleanup::delete_if_expired(store, &item, cutoff(kind, now)).await?;
                    Ok::<_, Error>((kind, deleted))
                })
                .buffer_unordered(CONCURRENT_DELETES)
                .try_collect()
                .await?;
            for (kind, deleted) in outcomes {
                if deleted {
                    *report.deleted.entry(kind).or_default() += 1;
                } else {
                    report.skipped += 1;
                }
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        report.buckets += 1;
        bucket += EXPIRY_BUCKET_SECONDS;
    }
    // Items can still expire into the current hour: the next run starts there.
    cleanup::advance_checkpoint(store, current, now).await?;
    report.finished = true;
    Ok(report)
}

/// The latest expiry an item of `kind` may have to be deleted at `now`.
fn cutoff(kind: &str, now: UnixTime) -> UnixTime {
    match kind {
        "api_tokens" | "scoped_tokens" => now - TOKENS_KEPT_AFTER_EXPIRY_SECONDS,
        _ => now,
    }
}

/// What an item is, from its key, for the report.
fn kind_of(item: &Expired) -> &'static str {
    let prefix = item.pk.split('#').next().unwrap_or_default();
    match (prefix, item.sk.split('#').next().unwrap_or_default()) {
        ("SESSION", "PREV") => "session_history",
        ("SESSION", _) => "sessions",
        ("EMAIL", "CODE") => "codes",
        ("EMAIL", _) => "address_notices",
        ("MAGIC", _) => "magic_links",
        ("CEREMONY", _) => "ceremonies",
        ("MFACHALLENGE", _) => "challenges",
        ("USER", "MFA_PENDING") => "pending_second_factors",
        ("INVITE", _) => "invitations",
        ("RATE", _) => "rate_limits",
        ("LOGINFAIL", _) => "login_failures",
        ("PAT", _) => "api_tokens",
        ("SCOPED", _) => "scoped_tokens",
        ("EVENTS", _) => "events",
        ("IDTOKEN", _) => "spent_id_tokens",
        ("MAILSENT", _) => "mail_claims",
        _ => "other",
    }
}
