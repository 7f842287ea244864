//! Works through the raw inbound log: claims pending payloads, hands each to the channel that
//! accepts it ([`crate::channels`]) and records the outcome on its row. What a payload means
//! is the channel's business; the processor only decides when and how often it is handled.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use omnistream_commands::channels::email::reply_address::ReplyTokens;
use omnistream_commands::infra::media::MediaStore;
use omnistream_commands::infra::stages::{self, Stage};
use omnistream_commands::infra::wakeup::{self, Wakeups};
use omnistream_commands::store::{ContactService, ConversationService, UnitOfWork};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::channels::{self, Disposition, InboundChannel, StoredPayload, UNACCEPTED_KEY};

/// Rows claimed per round.
const BATCH: i64 = 200;
/// Bytes of payload claimed per round: large emails are claimed a few at a time (always at
/// least one), so a round never holds hundreds of them in memory.
const BATCH_BYTES: i64 = 64 * 1024 * 1024;
/// Ordering groups (see [`InboundChannel::ordering_key`]) processed at once.
const CONCURRENCY: usize = 32;
/// The longest pause with nothing to do: a payload stored by this process wakes the processor
/// at once; those stored by another ingest process are found by this poll.
const IDLE_POLL: Duration = Duration::from_millis(25);
/// Attempts before a payload is parked as `failed`.
const MAX_ATTEMPTS: i32 = 10;
/// The advisory lock that makes claims one at a time across processors (see
/// [`InboundProcessor::process_due`]).
const CLAIM_LOCK: i64 = 0x6f6d_6e69_0000_0001;

/// Works through `inbound_webhooks`; the channels record with its services.
#[derive(Clone)]
pub struct InboundProcessor {
    /// The database holding the raw inbound log and the read models channels consult.
    pub pool: PgPool,
    /// Receives messages and statuses into conversations.
    pub conversations: ConversationService,
    /// Records customers' identities on their contacts.
    pub contacts: ContactService,
    /// Where inbound attachments are stored.
    pub media: MediaStore,
    /// Checks the conversation tokens of email reply addresses.
    pub reply_tokens: ReplyTokens,
    /// Wakes the processor when payloads are stored (else it polls every half second).
    pub wakeups: Wakeups,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    received_at: DateTime<Utc>,
    provider: String,
    content_type: Option<String>,
    body: Vec<u8>,
    attempts: i32,
}

/// A claimed payload with the channel that accepts it, if any.
struct Inbound {
    attempts: i32,
    received_at: DateTime<Utc>,
    payload: StoredPayload,
    channel: Option<&'static dyn InboundChannel>,
}

impl InboundProcessor {
    /// Processes payloads until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wakeup = self.wakeups.subscribe(wakeup::INBOUND);
        loop {
            let pause = match self.process_due().await {
                Ok(0) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = wakeup.wait(IDLE_POLL) => {}
                    }
                    continue;
                }
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(%error, "inbound round failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round; returns how many payloads were claimed.
    ///
    /// A round's commands run in one [`UnitOfWork`]: their events and the payloads' outcomes
    /// are committed together, once. If that commit fails (a writer outside the round appended
    /// to one of its conversations first, or one payload's events cannot be stored), the round
    /// is handed back whole and run again with a commit per command, which confines a bad
    /// payload to itself.
    ///
    /// Order per customer holds across processors and retries: a payload is claimed only while
    /// no earlier payload with its ordering key is leased (in flight) or waiting for a retry,
    /// claims are made one at a time (an advisory lock held by the claiming transaction, so the
    /// next claim sees this one's leases), and a customer's claimed payloads are handled in
    /// arrival order, stopping at the first that must be retried.
    pub async fn process_due(&self) -> anyhow::Result<usize> {
        match self.round(Commit::Batched).await? {
            Round::Settled(count) => Ok(count),
            Round::HandedBack => match self.round(Commit::PerCommand).await? {
                Round::Settled(count) => Ok(count),
                Round::HandedBack => Ok(0),
            },
        }
    }

    async fn round(&self, commit: Commit) -> anyhow::Result<Round> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        let ids: Vec<i64> = claimed.iter().map(|row| row.id).collect();
        let inbound = claimed.into_iter().map(|row| {
            let payload = StoredPayload::new(row.id, row.provider, row.content_type, row.body);
            Inbound {
                attempts: row.attempts,
                received_at: row.received_at,
                channel: channels::for_payload(&payload),
                payload,
            }
        });
        let unit = UnitOfWork::new(self.pool.clone());
        let worker = match commit {
            Commit::Batched => InboundProcessor {
                conversations: ConversationService::in_unit(&unit),
                contacts: ContactService::in_unit(&unit),
                ..self.clone()
            },
            Commit::PerCommand => self.clone(),
        };
        let settled: Vec<Vec<Mark>> = futures::stream::iter(by_customer(inbound))
            .map(|rows| worker.settle_in_order(rows))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let marks: Vec<Mark> = settled.into_iter().flatten().collect();
        let appended: Vec<DateTime<Utc>> = marks.iter().filter_map(|m| m.appended_since).collect();
        if let Err(error) = commit_round(&self.pool, &unit, marks).await {
            tracing::warn!(%error, payloads = count, "inbound round could not commit at once; handing it back");
            let back = ids.into_iter().map(|id| Mark {
                id,
                status: HANDED_BACK,
                error: None,
                appended_since: None,
            });
            record_marks(&self.pool, back).await?;
            return Ok(Round::HandedBack);
        }
        if !appended.is_empty() {
            self.wakeups.announce(wakeup::EVENTS);
        }
        for received_at in appended {
            stages::record_since(Stage::Appended, received_at);
        }
        Ok(Round::Settled(count))
    }

    /// Claims the next due payloads (see [`Self::process_due`]).
    async fn claim(&self) -> sqlx::Result<Vec<Claimed>> {
        // A lease instead of a long transaction: readers of the event log wait for open
        // transactions, so none may stay open across the commands below. A lease outlived by a
        // crashed processor is taken over after 15 s; processing twice is harmless (idempotent).
        let mut claim = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *claim)
            .await?;
        let claimed: Vec<Claimed> = sqlx::query_as(
            "UPDATE inbound_webhooks SET attempts = attempts + 1, next_attempt_at = now() + interval '15 seconds'
             WHERE id IN (SELECT id FROM (
                              SELECT id, sum(size) OVER (ORDER BY id) - size AS before
                              FROM (SELECT w.id, octet_length(w.body) AS size FROM inbound_webhooks w
                                    WHERE w.status = 'pending' AND w.next_attempt_at <= now()
                                      AND NOT EXISTS (SELECT 1 FROM inbound_webhooks earlier
                                                      WHERE earlier.status = 'pending' AND earlier.ordering_key = w.ordering_key
                                                        AND earlier.id < w.id AND earlier.next_attempt_at > now())
                                    ORDER BY w.id LIMIT $1 FOR UPDATE SKIP LOCKED) due) sized
                          WHERE before < $2)
             RETURNING id, received_at, provider, content_type, body, attempts",
        )
        .bind(BATCH)
        .bind(BATCH_BYTES)
        .fetch_all(&mut *claim)
        .await?;
        claim.commit().await?;
        Ok(claimed)
    }

    /// Settles one customer's payloads in arrival order and returns their outcomes. After one
    /// that must be retried, the rest are handed back untouched: they wait behind it, however
    /// many processors there are.
    async fn settle_in_order(&self, rows: Vec<Inbound>) -> anyhow::Result<Vec<Mark>> {
        let mut marks = Vec::new();
        let mut rows = rows.into_iter();
        while let Some(inbound) = rows.next() {
            let mark = self.settle(inbound).await;
            let retry = mark.status == "pending";
            marks.push(mark);
            if retry {
                marks.extend(rows.map(|row| Mark {
                    id: row.payload.id,
                    status: HANDED_BACK,
                    error: None,
                    appended_since: None,
                }));
                break;
            }
        }
        Ok(marks)
    }

    /// Processes one payload; returns the outcome to record on its row.
    async fn settle(&self, inbound: Inbound) -> Mark {
        let Inbound {
            attempts,
            received_at,
            payload,
            channel,
        } = inbound;
        let id = payload.id;
        let outcome = match channel {
            // Handed over, not copied: an email body may be tens of megabytes.
            Some(channel) => channel.handle(self, payload).await,
            None => Ok(channels::unaccepted(&payload)),
        };
        let appended_since = matches!(outcome, Ok(Disposition::Processed)).then_some(received_at);
        let (status, error) = match outcome {
            Ok(Disposition::Processed) => ("processed", None),
            Ok(Disposition::Ignored(reason)) => ("ignored", Some(reason)),
            Err(error) if attempts < MAX_ATTEMPTS => ("pending", Some(error.to_string())),
            Err(error) => ("failed", Some(error.to_string())),
        };
        if status == "pending" {
            tracing::warn!(
                id,
                error = error.as_deref().unwrap_or_default(),
                "inbound payload will be retried"
            );
        }
        Mark {
            id,
            status,
            error,
            appended_since,
        }
    }
}

/// How a round's commands are committed.
#[derive(Clone, Copy)]
enum Commit {
    /// All of them with the payloads' outcomes, once.
    Batched,
    /// Each on its own, then the outcomes.
    PerCommand,
}

/// What became of a round.
enum Round {
    /// Its payloads' outcomes are recorded; this many were claimed.
    Settled(usize),
    /// It could not commit and was handed back untouched.
    HandedBack,
}

/// Commits the events of a round's `unit` and its payloads' outcomes in one transaction.
async fn commit_round(pool: &PgPool, unit: &UnitOfWork, marks: Vec<Mark>) -> anyhow::Result<()> {
    let mut transaction = pool.begin().await?;
    unit.append_in(&mut transaction).await?;
    record_marks(&mut *transaction, marks).await?;
    transaction.commit().await?;
    Ok(())
}

/// The status a payload handed back untouched is marked with: its claim is undone, so it is
/// taken again, in order, once the payload before it succeeds.
const HANDED_BACK: &str = "handed back";

/// The outcome of one claimed payload, recorded with the round's others.
struct Mark {
    id: i64,
    /// `processed`, `ignored`, `failed`, `pending` (retry with backoff) or [`HANDED_BACK`].
    status: &'static str,
    error: Option<String>,
    /// When a processed payload was received: its events are appended once the round commits.
    appended_since: Option<DateTime<Utc>>,
}

/// Records a round's outcomes in one statement (the payloads' leases keep them from being
/// claimed again meanwhile; if this never commits, they are processed again, which their
/// idempotent commands make harmless).
async fn record_marks(
    executor: impl sqlx::PgExecutor<'_>,
    marks: impl IntoIterator<Item = Mark>,
) -> sqlx::Result<()> {
    let (mut ids, mut statuses, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for mark in marks {
        ids.push(mark.id);
        statuses.push(mark.status);
        errors.push(mark.error);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE inbound_webhooks w SET
            status = CASE WHEN m.status = $4 THEN 'pending' ELSE m.status END,
            error = CASE WHEN m.status = $4 THEN w.error ELSE m.error END,
            attempts = CASE WHEN m.status = $4 THEN w.attempts - 1 ELSE w.attempts END,
            processed_at = CASE WHEN m.status IN ('pending', $4) THEN NULL ELSE now() END,
            next_attempt_at = CASE m.status
                WHEN 'pending' THEN now() + make_interval(secs => least(2 ^ w.attempts, 300))
                WHEN $4 THEN now()
                ELSE w.next_attempt_at END
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS m(id, status, error)
         WHERE w.id = m.id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(errors)
    .bind(HANDED_BACK)
    .execute(executor)
    .await?;
    Ok(())
}

/// Groups claimed payloads by their channel's [ordering key](InboundChannel::ordering_key), each
/// group in arrival (id) order: payloads of one customer are processed one after the other,
/// different customers at once.
fn by_customer(inbound: impl IntoIterator<Item = Inbound>) -> Vec<Vec<Inbound>> {
    let mut inbound: Vec<Inbound> = inbound.into_iter().collect();
    inbound.sort_by_key(|row| row.payload.id);
    let mut groups: Vec<(String, Vec<Inbound>)> = Vec::new();
    for row in inbound {
        let key = match row.channel {
            Some(channel) => channel.ordering_key(&row.payload),
            None => UNACCEPTED_KEY.to_owned(),
        };
        match groups.iter_mut().find(|(known, _)| *known == key) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    groups.into_iter().map(|(_, rows)| rows).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(id: i64, provider: &str, body: &str) -> Inbound {
        let payload = StoredPayload::new(id, provider.into(), None, body.as_bytes().to_vec());
        Inbound {
            attempts: 1,
            received_at: Utc::now(),
            channel: channels::for_payload(&payload),
            payload,
        }
    }

    #[test]
    fn payloads_are_grouped_per_customer_in_arrival_order_across_channels() {
        let whatsapp = |from: &str| {
            format!(
                r#"{{"object": "whatsapp_business_account", "entry": [{{"changes": [{{"value":
                    {{"metadata": {{"phone_number_id": "100"}}, "messages": [{{"from": "{from}"}}]}}}}]}}]}}"#
            )
        };
        let page = r#"{"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "message": {"mid": "m"}}]}]}"#;
        let rows = vec![
            claimed(7, "meta", &whatsapp("6281")),
            claimed(2, "email", "From: a@example.com\r\n\r\nhi"),
            claimed(3, "meta", &whatsapp("6282")),
            claimed(1, "meta", &whatsapp("6281")),
            claimed(4, "messenger", page),
            claimed(5, "meta", "not json"),
            claimed(6, "email", "From: b@example.com\r\n\r\nhi"),
            claimed(8, "instagram", r#"{"object": "user", "entry": []}"#),
        ];
        let groups: Vec<Vec<i64>> = by_customer(rows)
            .iter()
            .map(|group| group.iter().map(|row| row.payload.id).collect())
            .collect();
        assert_eq!(
            groups,
            vec![vec![1, 7], vec![2, 6], vec![3], vec![4], vec![5, 8]]
        );
    }

    #[test]
    fn each_payload_goes_to_the_channel_of_its_provider_or_object() {
        let channel = |provider: &str, body: &str| {
            let payload = StoredPayload::new(1, provider.into(), None, body.as_bytes().to_vec());
            channels::for_payload(&payload).map(|c| c.name())
        };
        let whatsapp = r#"{"object": "whatsapp_business_account", "entry": []}"#;
        assert_eq!(channel("meta", whatsapp), Some("whatsapp"));
        assert_eq!(channel("messenger", whatsapp), Some("whatsapp"));
        assert_eq!(
            channel("meta", r#"{"object": "page"}"#),
            Some("meta messaging")
        );
        assert_eq!(
            channel("instagram", r#"{"object": "instagram"}"#),
            Some("meta messaging")
        );
        assert_eq!(channel("email", whatsapp), Some("email"));
        assert_eq!(channel("meta", "not json"), None);
        assert_eq!(channel("meta", r#"{"object": "user"}"#), None);
        let unaccepted = |body: &str| {
            channels::unaccepted(&StoredPayload::new(1, "meta".into(), None, body.into()))
        };
        assert_eq!(
            unaccepted("not json"),
            Disposition::Ignored("not JSON".into())
        );
        assert_eq!(
            unaccepted(r#"{"object": "user"}"#),
            Disposition::Ignored("unsupported object".into())
        );
    }
}
