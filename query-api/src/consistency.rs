//! Read-your-writes: the `X-Consistency-Token` a command answer carries, and
//! the bounded wait until the views have caught up with it.
//!
//! The token's format is [`events::consistency`]'s; this module decides
//! which views follow which stream and waits for them. A waiting read
//! checks its view when it arrives and again each time a projector batch
//! commits: every batch transaction notifies [`PROGRESS_CHANNEL`], which
//! one connection of this process listens on ([`Progress`]). Waits used to
//! poll their view every few milliseconds each (BENCHMARKS.md, "Reads that
//! wait are woken").

use std::convert::Infallible;
use std::time::Duration;

use events::AggregateType;
use events::auth::signing::SigningKey;
use events::consistency::ConsistencyToken;
use projections::read::{
    PROGRESS_CHANNEL, catalog_items, order_payments, order_shipments, orders, saga_timelines,
};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The header a read may carry.
pub const HEADER: &str = "x-consistency-token";

/// How often a waiting read checks its view while nothing tells it about
/// the projector's batches (the listener is reconnecting, or never
/// started).
const POLL_UNHEARD: Duration = Duration::from_millis(10);
/// How often it checks while the listener is up: a batch's notification
/// wakes it sooner; this only covers changes no batch announces (a view
/// swapped in by the replay CLI, a projector of an older build).
const POLL_HEARD: Duration = Duration::from_millis(100);
/// The listener's first and longest pause before it connects again.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_AT_MOST: Duration = Duration::from_secs(5);

/// The token is malformed or names a stream no view here follows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid consistency token")]
pub struct InvalidToken;

/// How a wait ended badly.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("the views have not reached the requested version yet")]
    Stale,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Verifies a token's signature and checks that a view here follows its stream.
pub fn parse(token: &str, key: &SigningKey) -> Result<ConsistencyToken, InvalidToken> {
    let parsed = ConsistencyToken::verify(token, key).map_err(|_| InvalidToken)?;
    let followed = matches!(
        parsed.aggregate,
        AggregateType::CatalogItem
            | AggregateType::Order
            | AggregateType::Payment
            | AggregateType::Shipment
            | AggregateType::Saga
    );
    // Order-keyed streams have UUID ids; checking now turns a bad id into a 400.
    let id_ok =
        parsed.aggregate == AggregateType::CatalogItem || Uuid::parse_str(&parsed.id).is_ok();
    if followed && id_ok {
        Ok(parsed)
    } else {
        Err(InvalidToken)
    }
}

/// The projector's batches as this process hears them, for the waits:
/// whether the listener is up, marked changed at every batch it hears (and
/// whenever it connects, since what was notified before is lost).
#[derive(Debug, Clone)]
pub struct Progress(watch::Receiver<bool>);

impl Progress {
    /// Listens on [`PROGRESS_CHANNEL`] of the views database at `url` until
    /// `shutdown`, connecting again whenever the connection is lost.
    pub fn listen(url: String, shutdown: CancellationToken) -> Progress {
        let (heard, progress) = watch::channel(false);
        tokio::spawn(async move {
            let mut pause = RECONNECT_FIRST;
            loop {
                let error = tokio::select! {
                    () = shutdown.cancelled() => return,
                    Err(error) = follow(&url, &heard) => error,
                };
                // A connection that had been up starts the backoff afresh.
                if heard.send_replace(false) {
                    pause = RECONNECT_FIRST;
                }
                tracing::warn!(%error, "listening for the projector's batches failed, waits poll meanwhile");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(RECONNECT_AT_MOST);
            }
        });
        Progress(progress)
    }

    /// Nothing listens: waits poll their view (for handlers tested alone).
    #[cfg(test)]
    pub fn unheard() -> Progress {
        Progress(watch::channel(false).1)
    }
}

/// Passes on the notifications of one listening connection. A lost
/// connection is taken up again by the listener itself (`try_recv` answers
/// `None` then) and wakes the waits too, as what was notified meanwhile is
/// lost.
async fn follow(url: &str, heard: &watch::Sender<bool>) -> Result<Infallible, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(PROGRESS_CHANNEL).await?;
    loop {
        // Marks the value changed even where it already was true.
        heard.send_replace(true);
        listener.try_recv().await?;
    }
}

/// Waits until the view of the token's aggregate has reached its version,
/// for at most `limit`: it checks when asked, and again after each batch
/// the projector commits (or every [`POLL_HEARD`] or [`POLL_UNHEARD`]).
/// `query_consistency_wakeups_total{by}` counts what woke each check:
/// `listener` (a batch, or the listener connecting again) or `timer` (all
/// of them while the listener is down).
pub async fn wait(
    token: &ConsistencyToken,
    pool: &PgPool,
    progress: &Progress,
    limit: Duration,
) -> Result<(), WaitError> {
    let deadline = Instant::now() + limit;
    let wanted = i64::try_from(token.version).unwrap_or(i64::MAX);
    let mut heard = progress.0.clone();
    loop {
        // Marked seen before the check, so a batch that commits during it
        // wakes the wait below.
        let listening = *heard.borrow_and_update();
        if current_version(token, pool).await? >= wanted {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::Stale);
        }
        let poll = if listening { POLL_HEARD } else { POLL_UNHEARD };
        let until = (now + poll).min(deadline);
        let woken_by = tokio::select! {
            changed = heard.changed() => match changed {
                Ok(()) => "listener",
                // The listener is gone (shutting down): poll instead.
                Err(_) => {
                    tokio::time::sleep_until(until).await;
                    "timer"
                }
            },
            () = tokio::time::sleep_until(until) => "timer",
        };
        metrics::counter!("query_consistency_wakeups_total", "by" => woken_by).increment(1);
    }
}

async fn current_version(token: &ConsistencyToken, pool: &PgPool) -> Result<i64, sqlx::Error> {
    let order_id = || Uuid::parse_str(&token.id).unwrap_or_default();
    match token.aggregate {
        AggregateType::CatalogItem => catalog_items::version(pool, &token.id).await,
        AggregateType::Order => orders::version(pool, order_id()).await,
        AggregateType::Payment => order_payments::version(pool, order_id()).await,
        AggregateType::Shipment => order_shipments::version(pool, order_id()).await,
        AggregateType::Saga => saga_timelines::version(pool, order_id()).await,
        // `parse` refuses the others.
        AggregateType::Probe => Ok(i64::MAX),
    }
}

/// What a token may name on a route: a read waits only for the resource it
/// reads, so a token issued for one order cannot hold a read of another.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// A catalog item: a `catalog` token for that SKU.
    Item(&'a str),
    /// One order (its document or saga): a token of any order-keyed stream
    /// for that order.
    Order(Uuid),
    /// A customer's order history: an `orders` token.
    History,
    /// An operator's list: any token.
    Any,
}

impl Resource<'_> {
    pub fn admits(&self, token: &ConsistencyToken) -> bool {
        match self {
            Resource::Item(sku) => {
                token.aggregate == AggregateType::CatalogItem && token.id == *sku
            }
            Resource::Order(id) => {
                token.aggregate != AggregateType::CatalogItem && token.id == id.to_string()
            }
            Resource::History => token.aggregate == AggregateType::Order,
            Resource::Any => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use events::consistency::consistency_token;

    use super::*;

    const ORDER: &str = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

    fn key() -> SigningKey {
        SigningKey::from_secret(b"a-signing-secret-of-32-bytes-yes").unwrap()
    }

    #[test]
    fn signed_tokens_of_followed_streams_parse() {
        let text = consistency_token(AggregateType::Order, ORDER, 3, &key());
        let parsed = parse(&text, &key()).unwrap();
        assert_eq!(
            (parsed.aggregate, parsed.version),
            (AggregateType::Order, 3)
        );
        let text = consistency_token(AggregateType::CatalogItem, "SKU-1.a/b", 12, &key());
        assert_eq!(parse(&text, &key()).unwrap().id, "SKU-1.a/b");
    }

    #[test]
    fn unsigned_malformed_and_unfollowed_tokens_are_refused() {
        for token in [
            String::new(),
            format!("v1.orders.3.{ORDER}"),
            consistency_token(AggregateType::Order, "not-a-uuid", 3, &key()),
            consistency_token(AggregateType::Probe, ORDER, 3, &key()),
            consistency_token(AggregateType::Order, ORDER, 3, &SigningKey::development()),
        ] {
            assert_eq!(parse(&token, &key()), Err(InvalidToken), "{token:?}");
        }
    }

    #[test]
    fn a_token_admits_only_its_own_resource() {
        let order: Uuid = ORDER.parse().unwrap();
        let token = |aggregate, id: &str| ConsistencyToken {
            aggregate,
            id: id.to_owned(),
            version: 1,
        };
        assert!(Resource::Order(order).admits(&token(AggregateType::Payment, ORDER)));
        assert!(!Resource::Order(Uuid::nil()).admits(&token(AggregateType::Order, ORDER)));
        assert!(!Resource::Order(order).admits(&token(AggregateType::CatalogItem, ORDER)));
        assert!(Resource::Item("A").admits(&token(AggregateType::CatalogItem, "A")));
        assert!(!Resource::Item("B").admits(&token(AggregateType::CatalogItem, "A")));
        assert!(!Resource::History.admits(&token(AggregateType::Saga, ORDER)));
    }
}
