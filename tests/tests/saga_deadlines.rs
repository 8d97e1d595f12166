//! The timer's rule, against the saga database: a deadline fires only once
//! the worker has read its inputs up to the deadline (the partitions'
//! event-time watermarks), however long ago it passed on the clock.

use chrono::Utc;
use tests::TestEnv;
use tests::shop::saga_state;

/// A saga whose deadline passed an hour ago is left alone while the worker's watermark is behind
/// the deadline, and fired once the worker has read past it.
#[tokio::test]
async fn a_passed_deadline_waits_for_the_worker_to_read_up_to_it() {
    let env = TestEnv::new();
    let pool = sagas::store::connect_and_migrate(&env.sagas_db_url)
        .await
        .unwrap();
    let pace = sagas::Pace::default();
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let order = order_placed();
    let (saga, _) = sagas::machine::start(&order, pace, hour_ago);
    let deadline = saga.deadline().expect("reserving has a deadline");
    let id = *order.order_id.as_uuid();
    let stored = sagas::store::Stored { saga, version: 1 };
    let mut tx = pool.begin().await.unwrap();
    let writes = sagas::store::Writes {
        sagas: vec![(id, &stored)],
        ..Default::default()
    };
    sagas::store::save(&mut tx, writes).await.unwrap();
    tx.commit().await.unwrap();
    let topics = vec!["t.catalog.events".to_owned()];
    let set_watermark = |at: chrono::DateTime<Utc>| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO saga_positions (topic, partition, next_offset, watermark_at)
                 VALUES ('t.catalog.events', 0, 7, $1)
                 ON CONFLICT (topic, partition) DO UPDATE SET watermark_at = $1",
            )
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    let (handoff, _published) = sagas::publish::channel();
    let fire = || sagas::timer::fire_due(&pool, pace, &topics, &handoff);

    set_watermark(deadline - chrono::Duration::seconds(1)).await;
    assert_eq!(fire().await.unwrap(), 0, "the worker has not read that far");
    let state = saga_state(&env, &id.to_string()).await;
    assert_eq!(state["attempt"], 1, "{state}");

    set_watermark(Utc::now()).await;
    assert_eq!(fire().await.unwrap(), 1, "the worker has read past it");
    let state = saga_state(&env, &id.to_string()).await;
    assert_eq!(state["attempt"], 2, "the reservation is retried: {state}");
}

fn order_placed() -> sagas::machine::OrderPlacedFacts {
    use events::domain::{Address, Currency, CustomerId, OrderId, OrderLine, Sku};
    sagas::machine::OrderPlacedFacts {
        order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
        customer_id: CustomerId::new("late").unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: vec![OrderLine {
            sku: Sku::new("MUG").unwrap(),
            quantity: 1,
        }],
        shipping_address: Address {
            name: "Ada".into(),
            line1: "1 Loop Rd".into(),
            city: "Springfield".into(),
            postal_code: "12345".into(),
            country: "US".into(),
        },
        payment_token: "tok_ok".into(),
    }
}
