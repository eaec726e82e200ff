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

use crate::clock::{rfc3339, UnixTime};
use crate::email::Email;
use crate::mail::Mail;
use crate::store::api_tokens::{self, ApiToken};
use crate::store::cleanup::{self, Expired, Pass};
use crate::store::users::{self, AccountKind};
use crate::store::{expiry_bucket, EXPIRY_BUCKET_SECONDS};
use crate::{Error, State};

/// How far back a first run (no checkpoint yet) looks: items older than that were left to DynamoDB's TTL.
pub const FIRST_RUN_LOOKBACK_SECONDS: i64 = 7 * 86_400;

/// Personal access tokens and scoped tokens stay this long after they expire, so owners still see "expired".
pub const TOKENS_KEPT_AFTER_EXPIRY_SECONDS: i64 = crate::store::api_tokens::KEPT_AFTER_EXPIRY_SECONDS;

/// How long before a personal access token expires its owner is warned.
pub const WARN_BEFORE_SECONDS: i64 = 7 * 86_400;

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
    /// Owners warned of a token about to expire.
    pub warned: u64,
    /// Whether it reached the current hour (else it stopped for its deadline; the next run continues).
    pub finished: bool,
}

impl Report {
    /// All items deleted.
    pub fn total(&self) -> u64 {
        self.deleted.values().sum()
    }
}

/// Runs one pass: [`delete_expired`], then, when it finished, [`warn_expiring`]; the counts go to the log line
/// and to the `CleanupDeleted` metric by kind.
pub async fn run(state: &State, now: UnixTime, time_left: impl Fn() -> Duration) -> Result<Report, Error> {
    let mut report = Report::default();
    delete_expired(state, now, &time_left, &mut report).await?;
    if report.finished {
        warn_expiring(state, now, &time_left, &mut report).await?;
    }
    for (kind, count) in &report.deleted {
        crate::telemetry::cleanup_deleted(kind, *count);
    }
    Ok(report)
}

/// Deletes every bucket's expired items from the checkpoint to the current hour's, stopping when `time_left()`
/// falls under a safety margin. The checkpoint is written once, when the pass ends: the current hour's bucket
/// when it got there (items can still expire into it), else the bucket it stopped in (anything before is clean;
/// deleting is idempotent, so a crash only costs re-reading).
/// Round trips: the checkpoint, one query per bucket and page, one conditional delete per expired item, one
/// checkpoint write.
async fn delete_expired(
    state: &State,
    now: UnixTime,
    time_left: &impl Fn() -> Duration,
    report: &mut Report,
) -> Result<(), Error> {
    let store = &state.store;
    let current = expiry_bucket(now);
    let mut bucket = cleanup::checkpoint(store, Pass::Deletes)
        .await?
        .unwrap_or_else(|| expiry_bucket(now - FIRST_RUN_LOOKBACK_SECONDS));
    while bucket <= current {
        let mut start = None;
        loop {
            if time_left() < MARGIN {
                // Every bucket before this one is clean; this one is read again from its start.
                return cleanup::advance_checkpoint(store, Pass::Deletes, bucket, now).await;
            }
            let page = cleanup::expired_page(store, bucket, now, start, PAGE).await?;
            let outcomes: Vec<(&'static str, bool)> = stream::iter(page.items)
                .map(|item| async move {
                    let kind = kind_of(&item);
                    let deleted = match kind {
                        "api_tokens" | "scoped_tokens" => cleanup::delete_token_if_expired(store, &item, now).await?,
                        _ => cleanup::delete_if_expired(store, &item, now).await?,
                    };
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
    cleanup::advance_checkpoint(store, Pass::Deletes, current, now).await?;
    report.finished = true;
    Ok(())
}

/// Emails the owner of each personal access token that expires within [`WARN_BEFORE_SECONDS`], once per token (a
/// conditional flag on it). Each run reads only the expiry buckets that entered the window since the last one (a
/// checkpoint of its own), and only their tokens: in its bucket, a token's index sort key is the bucket itself (or,
/// for an item written before the validity end had its own attribute, its validity end, thirty days earlier),
/// which leaves out the other items of those hours. A token made with less than the window left gets no warning:
/// its owner chose that.
/// Round trips: the checkpoint, one query per new bucket and page, and per token its item, and when it is in the
/// window its owner and the flag; one SQS call per warning.
async fn warn_expiring(
    state: &State,
    now: UnixTime,
    time_left: &impl Fn() -> Duration,
    report: &mut Report,
) -> Result<(), Error> {
    let store = &state.store;
    let window = (now, now + WARN_BEFORE_SECONDS);
    // A token valid until `v` is in bucket `deletion_time(v)`, the hour at or after `v` + 30 days; one written before
    // the validity end had its own attribute is in the hour of `v` + 30 days. Earlier buckets hold only tokens that
    // have expired.
    let first = expiry_bucket(window.0 + TOKENS_KEPT_AFTER_EXPIRY_SECONDS);
    let last = api_tokens::deletion_time(window.1);
    // From this bucket on, tokens can still enter the window at later runs: they are read again.
    let resume = expiry_bucket(window.1 + TOKENS_KEPT_AFTER_EXPIRY_SECONDS);
    let mut bucket = cleanup::checkpoint(store, Pass::Warnings)
        .await?
        .map_or(first, |checkpoint| checkpoint.max(first));
    while bucket <= last {
        let mut start = None;
        loop {
            if time_left() < MARGIN {
                return cleanup::advance_checkpoint(store, Pass::Warnings, bucket.min(resume), now).await;
            }
            let page = cleanup::expiring_tokens_page(store, bucket, window.0, start, PAGE).await?;
            let warned: Vec<bool> = stream::iter(page.items)
                .map(|item| warn_one(state, item, window, now))
                .buffer_unordered(CONCURRENT_DELETES)
                .try_collect()
                .await?;
            report.warned += warned.into_iter().filter(|w| *w).count() as u64;
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        bucket += EXPIRY_BUCKET_SECONDS;
    }
    cleanup::advance_checkpoint(store, Pass::Warnings, resume, now).await
}

/// Warns the owner of one token, unless it is gone, revoked, outside `window` (its validity end read from the
/// token), warned already, or its owner has no mailbox (a service account). The flag is set before the mail is
/// queued, so a warning is sent at most once.
async fn warn_one(
    state: &State,
    item: Expired,
    (from, until): (UnixTime, UnixTime),
    now: UnixTime,
) -> Result<bool, Error> {
    let store = &state.store;
    let Some(token) = store.get::<ApiToken>(&item.pk, &item.sk).await? else {
        return Ok(false);
    };
    let Some(expires_at) = token.expires_at.filter(|at| from < *at && *at <= until) else {
        return Ok(false);
    };
    let Some(owner) = users::get(store, &token.user_id).await? else {
        return Ok(false);
    };
    let Ok(email) = Email::parse(&owner.email) else {
        return Ok(false);
    };
    if token.epoch < owner.token_epoch || owner.kind != AccountKind::Individual {
        return Ok(false);
    }
    if !cleanup::mark_expiry_warned(store, &item.pk, &item.sk, now).await? {
        return Ok(false);
    }
    let mail = Mail::ApiTokenExpiring {
        name: &token.name,
        expires_at: &rfc3339(expires_at),
    };
    if let Err(err) = state.mailer.send(&email, mail).await {
        tracing::warn!(error = ?err, token = %token.id, "queueing an expiry warning failed");
        return Ok(false);
    }
    Ok(true)
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
