//! The cache's version guard, against the real Redis: an older document never
//! replaces a newer one, and two documents neither of which covers the
//! other (two projectors holding different streams of one order) leave an
//! entry without a body, so readers go to PostgreSQL, until a document that
//! covers both arrives; and the versions alone of an order whose row a
//! projector has not seen do the same to a document that misses them.
//! Readers share pipelines, and each still gets its own entry, also from
//! a runtime other than the one that started the pipelining.

use std::time::Duration;

use projections::cache::{Cache, CacheError, Entry, Outcome};
use projections::documents::Unplaced;
use uuid::Uuid;

fn entry(cache: &Cache, key: &str, order: i64, payment: i64) -> Entry {
    let body = format!("{order}/{payment}");
    Entry {
        key: key.to_owned(),
        versions: vec![("orders", order), ("payments", payment)],
        fields: cache.owned_fields(key, body, "alice".to_owned()),
    }
}

async fn body(cache: &Cache, id: Uuid) -> Option<String> {
    cache.order(id).await.unwrap().map(|c| c.body)
}

fn namespace() -> String {
    format!("t{}:", Uuid::new_v4().simple())
}

fn cache_in(namespace: &str) -> Cache {
    Cache::new(
        &tests::redis_url(),
        namespace.to_owned(),
        Duration::from_secs(2),
    )
    .unwrap()
    .with_signing(&tests::auth_config().signing)
}

#[tokio::test]
async fn older_documents_never_win_and_incomparable_ones_leave_no_body() {
    let cache = cache_in(&namespace());
    let id = Uuid::now_v7();
    let key = cache.order_key(id);
    let generation = cache.learn_generation().await.unwrap();

    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 2, 1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 1, 1)])
            .await
            .unwrap(),
        0,
        "older"
    );
    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 2, 1)])
            .await
            .unwrap(),
        0,
        "the same"
    );
    assert_eq!(body(&cache, id).await.as_deref(), Some("2/1"));

    // One projector folded order event 3 without payment event 2, another
    // payment event 2 without order event 3.
    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 3, 1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 2, 2)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        body(&cache, id).await,
        None,
        "neither document is the latest"
    );
    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 3, 1)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(body(&cache, id).await, None, "still not covering payment 2");

    assert_eq!(
        cache
            .put(generation, &[entry(&cache, &key, 3, 2)])
            .await
            .unwrap(),
        1
    );
    let cached = cache.order(id).await.unwrap().unwrap();
    assert_eq!(cached.body, "3/2");
    assert_eq!(cached.owner.as_deref(), Some("alice"));
    assert_eq!(
        cached.version(events::AggregateType::Payment),
        2,
        "readers see the versions the body reflects"
    );
    cache.delete(vec![key]).await.unwrap();
}

/// A document with order, payment and shipment versions.
fn document(cache: &Cache, key: &str, versions: [i64; 3]) -> Entry {
    let body = format!("{versions:?}");
    Entry {
        key: key.to_owned(),
        versions: vec![
            ("orders", versions[0]),
            ("payments", versions[1]),
            ("shipments", versions[2]),
        ],
        fields: cache.owned_fields(key, body, "alice".to_owned()),
    }
}

#[tokio::test]
async fn versions_of_an_order_without_its_row_keep_a_document_missing_them_from_being_served() {
    let cache = cache_in(&namespace());
    let generation = cache.learn_generation().await.unwrap();
    // One projector folded the order and its payment up to the confirmation
    // without seeing the shipment's three events, which another projector
    // committed meanwhile without seeing the order's row: it has no
    // document, only the versions. Whichever write lands second, no body is
    // served until a document covering all three arrives.
    for unplaced_first in [true, false] {
        let id = Uuid::now_v7();
        let key = cache.order_key(id);
        let unplaced = cache.unplaced_entry(&Unplaced {
            order_id: id,
            payment_version: 0,
            shipment_version: 3,
        });
        let partial = document(&cache, &key, [3, 4, 0]);
        let writes = if unplaced_first {
            [unplaced, partial]
        } else {
            [partial, unplaced]
        };
        let outcomes = cache.put_each(generation, &writes).await.unwrap();
        assert_eq!(
            outcomes,
            [Outcome::Written, Outcome::Bodiless],
            "the second write takes the body away (the projector then rewrites it from PostgreSQL)"
        );
        assert_eq!(
            body(&cache, id).await,
            None,
            "unplaced first: {unplaced_first}"
        );

        let whole = document(&cache, &key, [3, 4, 3]);
        assert_eq!(cache.put(generation, &[whole]).await.unwrap(), 1);
        assert_eq!(body(&cache, id).await.as_deref(), Some("[3, 4, 3]"));
        let stale = cache.unplaced_entry(&Unplaced {
            order_id: id,
            payment_version: 4,
            shipment_version: 3,
        });
        assert_eq!(cache.put(generation, &[stale]).await.unwrap(), 0);
        assert_eq!(
            body(&cache, id).await.as_deref(),
            Some("[3, 4, 3]"),
            "versions the body covers leave it alone"
        );
        cache.delete(vec![key]).await.unwrap();
    }
}

#[tokio::test]
async fn documents_built_before_the_cache_was_emptied_are_refused() {
    let namespace = namespace();
    let cache = cache_in(&namespace);
    let id = Uuid::now_v7();
    let key = cache.order_key(id);
    let before = cache.learn_generation().await.unwrap();
    assert_eq!(
        cache
            .put(before, &[entry(&cache, &key, 3, 1)])
            .await
            .unwrap(),
        1
    );

    // Redis restarts empty (its namespace is this test's alone, so dropping
    // its keys is the same as a FLUSHALL for it).
    cache
        .delete(vec![key.clone(), cache.epoch_key()])
        .await
        .unwrap();
    assert!(
        matches!(
            cache.put(before, &[entry(&cache, &key, 2, 1)]).await,
            Err(CacheError::Stale)
        ),
        "a document built before the restart may be older than one the restart lost"
    );
    assert_eq!(body(&cache, id).await, None, "nothing was written");

    let after = cache.generation();
    assert!(after > before, "the writer learned the new epoch");
    assert_eq!(
        cache
            .put(after, &[entry(&cache, &key, 3, 1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(body(&cache, id).await.as_deref(), Some("3/1"));

    let other = cache_in(&namespace);
    assert_eq!(
        other.learn_generation().await.unwrap(),
        1,
        "a second writer joins the same epoch"
    );
    assert_eq!(other.put(1, &[entry(&other, &key, 4, 1)]).await.unwrap(), 1);
    cache.delete(vec![key, cache.epoch_key()]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_each_get_their_own_entry() {
    // Readers queued at the same moment share one pipeline to Redis; each
    // must still get its own key's answer, a hit or a miss.
    let cache = std::sync::Arc::new(cache_in(&namespace()));
    let generation = cache.learn_generation().await.unwrap();
    let ids: Vec<Uuid> = (0..500).map(|_| Uuid::now_v7()).collect();
    let written: Vec<Entry> = ids
        .iter()
        .step_by(2)
        .zip(1..)
        .map(|(id, order)| entry(&cache, &cache.order_key(*id), order, 0))
        .collect();
    assert_eq!(
        cache.put(generation, &written).await.unwrap(),
        written.len()
    );

    let readers: Vec<_> = ids
        .iter()
        .map(|&id| {
            let cache = cache.clone();
            tokio::spawn(async move { body(&cache, id).await })
        })
        .collect();
    for (n, reader) in readers.into_iter().enumerate() {
        let expected = (n % 2 == 0).then(|| format!("{}/0", n / 2 + 1));
        assert_eq!(reader.await.unwrap(), expected, "order {n}");
    }
    let mut keys: Vec<String> = written.into_iter().map(|e| e.key).collect();
    keys.push(cache.epoch_key());
    cache.delete(keys).await.unwrap();
}

#[test]
fn a_cache_outliving_its_first_runtime_still_reads() {
    // The reads task and the connection belong to the runtime of the first
    // read. Once it ends, a read from another runtime must still answer.
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let cache = cache_in(&namespace());
    let id = Uuid::now_v7();
    let key = cache.order_key(id);
    runtime().block_on(async {
        let generation = cache.learn_generation().await.unwrap();
        let written = [entry(&cache, &key, 1, 0)];
        assert_eq!(cache.put(generation, &written).await.unwrap(), 1);
        assert_eq!(body(&cache, id).await.as_deref(), Some("1/0"));
    });
    runtime().block_on(async {
        // The connection ended with the first runtime too: the first call
        // finds it broken and drops it, the next one reconnects.
        let read = match cache.order(id).await {
            Err(_) => cache.order(id).await,
            first => first,
        };
        assert_eq!(read.unwrap().map(|c| c.body).as_deref(), Some("1/0"));
        cache.delete(vec![key, cache.epoch_key()]).await.unwrap();
    });
}
