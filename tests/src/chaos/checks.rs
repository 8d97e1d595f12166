//! What a chaos run must not do, counted from what it left behind: the
//! read_committed log, the saga store, the views and the cache.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use events::AggregateType;
use events::command::Role;
use events::domain::{CatalogEvent, OrderEvent, PaymentEvent};
use projections::cache::{Cache, namespace_for};
use serde_json::Value;

use super::clients::{Placed, SCARCE, SCARCE_STOCK};
use super::cluster::{Cluster, Kind};
use super::nemesis::Outage;
use crate::auth::token;
use crate::views::views_equal_the_fold;
use crate::{TestEnv, eventually, log};

const TERMINAL: [&str; 3] = ["completed", "compensated", "needs_attention"];

/// Each invariant and how many times the run broke it.
#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<(&'static str, usize)>,
}

impl Table {
    pub fn is_clean(&self) -> bool {
        self.rows.iter().all(|(_, count)| *count == 0)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| invariant | broken |")?;
        writeln!(f, "|---|---|")?;
        for (name, count) in &self.rows {
            writeln!(f, "| {name} | {count} |")?;
        }
        Ok(())
    }
}

pub async fn check(
    env: &TestEnv,
    cluster: &Cluster,
    orders: &[Placed],
    outages: &[Outage],
) -> Table {
    let mut table = Table::default();
    let sagas = terminal_sagas(env, orders).await;
    let not_terminal = orders
        .iter()
        .filter(|o| {
            !sagas
                .get(&o.order_id)
                .is_some_and(|s| TERMINAL.contains(&s.as_str()))
        })
        .count();
    let wrong = orders.iter().filter(|o| {
        sagas
            .get(&o.order_id)
            .is_some_and(|s| !o.ends.contains(&s.as_str()))
    });
    let (mut otherwise, mut by_outage) = (0, 0);
    for o in wrong {
        let state = saga_state(env, &o.order_id).await;
        let ended = sagas.get(&o.order_id);
        if timed_out_by_outage(&state, outages) {
            by_outage += 1;
            eprintln!(
                "chaos: {} ({}) ended {ended:?}: its deadline passed while the broker was down",
                o.order_id, o.path
            );
        } else {
            otherwise += 1;
            eprintln!(
                "chaos: {} ({}) ended {ended:?}: {state}",
                o.order_id, o.path
            );
        }
    }
    if by_outage > 0 {
        eprintln!(
            "chaos: {by_outage} sagas timed out waiting through a broker outage and were \
             compensated, as designed (not counted below)"
        );
    }

    let order_log = log::<OrderEvent>(env, AggregateType::Order).await;
    let placed = |id: &str| {
        order_log.get(id).map_or(0, |events| {
            events
                .iter()
                .filter(|(_, e)| matches!(e, OrderEvent::OrderPlaced { .. }))
                .count()
        })
    };
    table.rows.push((
        "acknowledged orders lost",
        orders.iter().filter(|o| placed(&o.order_id) == 0).count(),
    ));
    table.rows.push((
        "orders placed twice",
        orders.iter().filter(|o| placed(&o.order_id) > 1).count(),
    ));
    table.rows.push(("sagas not terminal", not_terminal));
    table
        .rows
        .push(("sagas ended otherwise than their path", otherwise));
    table.rows.push(("units oversold", oversold(env).await));
    let (unconfirmed, twice) = payments(env, &order_log).await;
    table.rows.push((
        "payments captured for an order neither confirmed nor refunded",
        unconfirmed,
    ));
    table
        .rows
        .push(("payments captured or refunded twice", twice));
    table.rows.push((
        "views differing from the fold of the log",
        views_differ(env).await,
    ));
    table.rows.push((
        "cache entries differing from PostgreSQL",
        cache_differs(env, cluster, orders).await,
    ));
    table
}

/// The saga states of `orders`, once all are terminal (or after 3 minutes).
async fn terminal_sagas(env: &TestEnv, orders: &[Placed]) -> HashMap<String, String> {
    let pool = sqlx::PgPool::connect(&env.sagas_db_url)
        .await
        .expect("the saga store");
    let read = || async {
        let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as("SELECT order_id, status FROM sagas")
            .fetch_all(&pool)
            .await
            .ok()?;
        Some(
            rows.into_iter()
                .map(|(id, status)| (id.to_string(), status))
                .collect::<HashMap<_, _>>(),
        )
    };
    let all_terminal = eventually(Duration::from_secs(180), || async {
        let sagas = read().await?;
        orders
            .iter()
            .all(|o| {
                sagas
                    .get(&o.order_id)
                    .is_some_and(|s| TERMINAL.contains(&s.as_str()))
            })
            .then_some(sagas)
    })
    .await;
    match all_terminal {
        Some(sagas) => sagas,
        None => read().await.unwrap_or_default(),
    }
}

/// The saga's stored state of `order_id`, to explain how it ended (null
/// when it cannot be read).
async fn saga_state(env: &TestEnv, order_id: &str) -> Value {
    let Ok(pool) = sqlx::PgPool::connect(&env.sagas_db_url).await else {
        return Value::Null;
    };
    let state: Option<(String,)> =
        sqlx::query_as("SELECT state::text FROM sagas WHERE order_id::text = $1")
            .bind(order_id)
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
    state
        .and_then(|(s,)| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// How long after the broker is back its outage may still make a deadline
/// fire: the processors rejoin their groups and restore their partitions,
/// and the gateway and the saga worker catch up.
const RECOVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// True when the saga timed out waiting through a broker outage: its reason
/// is a timeout, and the deadline fired during an outage (or while the
/// system recovered from it) of a step that started before the broker was
/// back. No answer could be written in time then, and compensating is what
/// the design asks for; a timeout long after the broker was back (an answer
/// lost) still counts.
fn timed_out_by_outage(state: &Value, outages: &[Outage]) -> bool {
    let reason = state["phase"]["reason"].as_str().unwrap_or_default();
    let Some(history) = state["history"].as_array() else {
        return false;
    };
    let at = |entry: &Value| {
        entry["started_at"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
    };
    reason.ends_with("_timed_out")
        && history.windows(2).any(|steps| {
            let timed_out = steps[0]["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("compensating:"));
            let (Some(started), Some(fired)) = (at(&steps[0]), at(&steps[1])) else {
                return false;
            };
            timed_out
                && outages
                    .iter()
                    .any(|o| started <= o.to && o.from <= fired && fired <= o.to + RECOVERY)
        })
}

/// Units of the scarce SKU committed beyond its stock.
async fn oversold(env: &TestEnv) -> usize {
    let catalog = log::<CatalogEvent>(env, AggregateType::CatalogItem).await;
    let committed: u32 = catalog
        .get(SCARCE)
        .into_iter()
        .flatten()
        .filter_map(|(_, e)| match e {
            CatalogEvent::StockCommitted { quantity, .. } => Some(*quantity),
            _ => None,
        })
        .sum();
    committed.saturating_sub(SCARCE_STOCK) as usize
}

/// Payments captured for an order that is neither confirmed nor refunded,
/// and payments captured or refunded more than once.
async fn payments(
    env: &TestEnv,
    order_log: &HashMap<String, Vec<(events::EventMeta, OrderEvent)>>,
) -> (usize, usize) {
    let payment_log = log::<PaymentEvent>(env, AggregateType::Payment).await;
    let (mut unconfirmed, mut twice) = (0, 0);
    for (order_id, events) in &payment_log {
        let count = |f: fn(&PaymentEvent) -> bool| events.iter().filter(|(_, e)| f(e)).count();
        let captures = count(|e| matches!(e, PaymentEvent::PaymentCaptured { .. }));
        let refunds = count(|e| matches!(e, PaymentEvent::PaymentRefunded { .. }));
        let confirmed = order_log.get(order_id).is_some_and(|events| {
            events
                .iter()
                .any(|(_, e)| matches!(e, OrderEvent::OrderConfirmed))
        });
        if captures > 0 && refunds == 0 && !confirmed {
            unconfirmed += 1;
        }
        if captures > 1 || refunds > 1 {
            twice += 1;
        }
    }
    (unconfirmed, twice)
}

async fn views_differ(env: &TestEnv) -> usize {
    let pool = sqlx::PgPool::connect(&env.views_db_url)
        .await
        .expect("the views");
    let equal = eventually(Duration::from_secs(120), || async {
        views_equal_the_fold(env, &pool).await.ok()
    })
    .await;
    match equal {
        Some(()) => 0,
        None => {
            let differs = views_equal_the_fold(env, &pool).await.unwrap_err();
            eprintln!("chaos: the views differ from the fold: {differs}");
            1
        }
    }
}

/// Orders whose cached document differs from the one built from
/// PostgreSQL: each is read, its cache entry dropped, and read again. The
/// cache is written after each commit, so right after the views caught up
/// it may still be a write behind: each entry gets a while to reflect the
/// versions PostgreSQL holds first.
async fn cache_differs(env: &TestEnv, cluster: &Cluster, orders: &[Placed]) -> usize {
    let cache = Cache::new(
        &env.redis_url,
        namespace_for(&env.views_db_url),
        Duration::from_secs(2),
    )
    .expect("the cache")
    .with_signing(&crate::auth_config().signing);
    let pool = sqlx::PgPool::connect(&env.views_db_url)
        .await
        .expect("the views");
    let query = cluster.addrs(Kind::Query)[0].clone();
    let http = reqwest::Client::new();
    let admin = token(Role::Admin, "ops");
    let read = |id: &str| {
        let request = http
            .get(format!("http://{query}/orders/{id}"))
            .bearer_auth(&admin);
        async move {
            let response = request.send().await.ok()?;
            let source = response
                .headers()
                .get("x-served-from")?
                .to_str()
                .ok()?
                .to_owned();
            Some((source, response.json::<Value>().await.ok()?))
        }
    };
    let mut differs = 0;
    for order in orders {
        let id = order.order_id.parse().expect("an order id");
        caught_up(&cache, &pool, id).await;
        let Some((source, cached)) = read(&order.order_id).await else {
            continue;
        };
        if source != "cache" {
            continue;
        }
        cache
            .delete(vec![cache.order_key(id)])
            .await
            .expect("dropping a cache entry");
        let fresh = read(&order.order_id).await.map(|(_, body)| body);
        if fresh.as_ref() != Some(&cached) {
            eprintln!("chaos: cache of {}: {cached} != {fresh:?}", order.order_id);
            differs += 1;
        }
    }
    differs
}

/// Waits (30 s at most) until the cache entry of order `id` is absent,
/// without a body, or reflects every stream version PostgreSQL holds.
async fn caught_up(cache: &Cache, pool: &sqlx::PgPool, id: uuid::Uuid) {
    eventually(Duration::from_secs(30), || async {
        let Some(cached) = cache.order(id).await.ok()? else {
            return Some(());
        };
        let documents = projections::documents::orders(pool, &[id]).await.ok()?;
        let versions = documents.first()?.versions();
        versions
            .iter()
            .all(|(stream, version)| cached.version(*stream) == *version)
            .then_some(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn timed_out(started: i64, fired: i64) -> Value {
        serde_json::json!({
            "phase": {"step": "compensated", "reason": "payment_timed_out"},
            "history": [
                {"step": "authorizing_and_scheduling", "outcome": "compensating: payment_timed_out",
                 "started_at": at(started)},
                {"step": "compensating_shipment", "outcome": "succeeded", "started_at": at(fired)},
            ],
        })
    }

    #[test]
    fn only_a_deadline_that_passed_while_the_broker_was_down_is_explained() {
        let outage = [Outage {
            from: at(10),
            to: at(60),
        }];
        assert!(timed_out_by_outage(&timed_out(5, 65), &outage));
        assert!(
            !timed_out_by_outage(&timed_out(70, 130), &outage),
            "started after the broker was back"
        );
        assert!(
            !timed_out_by_outage(&timed_out(5, 200), &outage),
            "fired long after the broker was back"
        );
        assert!(!timed_out_by_outage(&timed_out(5, 65), &[]), "no outage");
        let mut declined = timed_out(5, 65);
        declined["phase"]["reason"] = "payment_declined".into();
        assert!(!timed_out_by_outage(&declined, &outage), "not a timeout");
    }
}
