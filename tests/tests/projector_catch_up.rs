//! A projector far behind the log (every record of a batch older than ten
//! seconds) applies the batch without building its orders' documents: their
//! cache entries keep only the versions, so a body older than PostgreSQL is
//! never served; a read goes to PostgreSQL and caches what it read, and the
//! next batch of a projector that keeps up writes the document again.
//!
//! The events are written straight to the topic with their record time set
//! in the past, as a projector catching up after an outage reads them.
//!
//! A projector started after the traffic applies each batch as one
//! transaction per part of the partitions at once; the views still equal
//! the fold of the log, the sales sums (the rows both parts add to) too.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use command::bus::KafkaBus;
use events::AggregateType;
use events::domain::OrderEvent;
use projections::cache::Cache;
use rdkafka::producer::FutureProducer;
use tests::records::{append, append_at, placed};
use tests::views::assert_views_equal_the_fold;
use tests::views::traffic::{self, create_items};
use tests::{TestEnv, eventually, log};
use uuid::Uuid;

/// The order version of `id`'s cached body, `None` while it has no body.
async fn cached_version(cache: &Cache, id: Uuid) -> Option<i64> {
    let entry = cache.order(id).await.unwrap()?;
    Some(entry.version(AggregateType::Order))
}

#[tokio::test]
async fn batches_far_behind_leave_their_orders_documents_to_postgres() {
    let env = TestEnv::new();
    env.kafka
        .ensure_topics(&env.kafka.all_topics())
        .await
        .unwrap();
    let projections = env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let ann = tests::auth::token(events::command::Role::Customer, "ann");
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    let cache = tests::views::cache(&env);
    let views = sqlx::PgPool::connect(&env.views_db_url).await.unwrap();
    let stored = |id: Uuid| tests::views::order_version(&views, id);
    let orders = AggregateType::Order;
    let (kept, late) = (Uuid::now_v7(), Uuid::now_v7());
    let long_ago = Utc::now() - chrono::Duration::seconds(60);

    // A projector that keeps up caches the document.
    append(&producer, &env, orders, kept, 1, &placed("ann")).await;
    let first = eventually(Duration::from_secs(30), || async {
        (cached_version(&cache, kept).await == Some(1)).then_some(())
    });
    assert!(first.await.is_some(), "the placed order was never cached");

    // A minute-old event of the same order, and a minute-old order: the
    // batch is far behind. Both reach PostgreSQL; the cached body of version
    // 1 is taken away rather than left older than the view, and the new
    // order gets no body.
    let request = OrderEvent::OrderCancellationRequested {
        reason: "changed my mind".into(),
    };
    append_at(&producer, &env, (orders, kept, 2), &request, long_ago).await;
    append_at(&producer, &env, (orders, late, 1), &placed("ann"), long_ago).await;
    let applied = eventually(Duration::from_secs(30), || async {
        (stored(kept).await == Some(2) && stored(late).await == Some(1)).then_some(())
    });
    assert!(
        applied.await.is_some(),
        "the old events never reached the views"
    );
    let emptied = eventually(Duration::from_secs(10), || async {
        cached_version(&cache, kept).await.is_none().then_some(())
    });
    assert!(
        emptied.await.is_some(),
        "the body of version 1 is still served: {:?}",
        cached_version(&cache, kept).await
    );
    assert_eq!(cached_version(&cache, late).await, None);
    // The first read of the order is PostgreSQL's, which caches it.
    let path = format!("/orders/{late}");
    assert_eq!(served_from(&query, &path, &ann).await, "postgres");
    let filled = eventually(Duration::from_secs(10), || async {
        (served_from(&query, &path, &ann).await == "cache").then_some(())
    });
    assert!(filled.await.is_some(), "the read did not fill the cache");
    assert_eq!(cached_version(&cache, late).await, Some(1));
    let entry: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(cache.order_key(kept))
        .query_async(&mut redis_connection(&env).await)
        .await
        .unwrap();
    assert!(
        entry.contains(&("orders".into(), "2".into())),
        "the entry keeps the version the views reached: {entry:?}"
    );

    // The next event is fresh: its batch writes the whole document again.
    append(
        &producer,
        &env,
        orders,
        kept,
        3,
        &OrderEvent::OrderConfirmed,
    )
    .await;
    let rewritten = eventually(Duration::from_secs(30), || async {
        (cached_version(&cache, kept).await == Some(3)).then_some(())
    });
    assert!(
        rewritten.await.is_some(),
        "the document was not cached again"
    );

    let catch_up = catch_up_batches(&projections).await;
    assert!(catch_up >= 1, "no batch counted as catching up");
}

#[tokio::test]
async fn a_projector_catching_up_over_two_partitions_equals_the_fold() {
    const ORDERS: usize = 400;
    let env = TestEnv::new();
    assert_eq!(env.kafka.partitions, 2, "the halves need two partitions");
    let _command = env.spawn_command().await;
    let bus = Arc::new(
        KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
            .await
            .unwrap(),
    );
    let skus: Vec<String> = (0..4).map(|n| format!("PART-{n}")).collect();
    create_items(&bus, &skus).await;
    let mut load = tokio::task::JoinSet::new();
    for client in 0..20 {
        let (bus, skus) = (bus.clone(), skus.clone());
        load.spawn(async move {
            for n in (client..ORDERS).step_by(20) {
                let customer = format!("c{}", n % 20);
                traffic::one_order(&bus, n, &customer, &skus[n % skus.len()], 1).await;
            }
        });
    }
    while let Some(done) = load.join_next().await {
        done.unwrap();
    }
    // Every command decided, then the log left to age past the catch-up
    // age, so the projector started next is far behind from its first batch.
    let decided = eventually(Duration::from_secs(60), || async {
        let orders = log::<OrderEvent>(&env, AggregateType::Order).await;
        let events: usize = orders.values().map(Vec::len).sum();
        // Placed and priced; confirmed when even; cancelled every tenth.
        (orders.len() == ORDERS && events == ORDERS * 2 + ORDERS / 2 + ORDERS / 10).then_some(())
    });
    assert!(decided.await.is_some(), "the orders were not all decided");
    tokio::time::sleep(Duration::from_secs(11)).await;

    let projections = env.spawn_projections().await;
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    assert_views_equal_the_fold(&env, &pool).await;
    let catch_up = catch_up_batches(&projections).await;
    assert!(catch_up >= 1, "no batch counted as catching up");
}

/// How many batches the projector applied as catching up.
async fn catch_up_batches(projections: &tests::Service) -> u64 {
    let metrics = projections.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("projection_batches_total{mode=\"catch_up\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Where a read of `path` was served from, after checking it succeeded.
async fn served_from(query: &tests::Service, path: &str, bearer: &str) -> String {
    let response = tests::views::query::get(query, path, Some(bearer), None).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
    let source = response.headers().get("x-served-from").cloned();
    source
        .map(|s| s.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn redis_connection(env: &TestEnv) -> redis::aio::MultiplexedConnection {
    redis::Client::open(env.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
