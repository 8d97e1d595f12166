//! Good orders at a steady, light pace: every one ends `confirmed`, nothing
//! is captured before its stock is reserved and its shipment scheduled, and
//! the time each hop took (from the processors' event times) is printed, so
//! a change to the saga's hops shows its effect (`--nocapture`).

use std::time::Duration;

use tests::latency::{self, MILESTONES};
use tests::shop::{OrderSpec, Shop, saga_status};
use tests::{TestEnv, eventually};

const ORDERS: usize = 40;

#[tokio::test]
async fn good_orders_are_confirmed_and_captured_only_after_stock_and_shipment() {
    let env = TestEnv::new();
    let shop = Shop::start(&env).await;
    let sagas = env.spawn_sagas().await;
    shop.create_item("MUG", 1000, 1_000).await;
    shop.create_item("TEE", 1500, 1_000).await;
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        let lines = [("MUG", 1), ("TEE", 2)];
        let spec = OrderSpec {
            customer: "pace",
            lines: &lines[..1 + n % 2],
            token: "tok_ok",
            country: "US",
        };
        ids.push(shop.place(&spec, &format!("pace-{n}")).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let done = eventually(Duration::from_secs(60), || async {
            (saga_status(&env, id).await? == "completed").then_some(())
        })
        .await;
        assert!(done.is_some(), "{id}: {:?}", saga_status(&env, id).await);
    }
    let timelines = latency::timelines(&env, &ids).await;
    for (id, timeline) in &timelines {
        for milestone in MILESTONES {
            assert!(timeline.contains_key(milestone), "{id}: no {milestone}");
        }
        let captured = timeline["captured"];
        assert!(timeline["reserved"] <= captured, "{id}: {timeline:?}");
        assert!(timeline["scheduled"] <= captured, "{id}: {timeline:?}");
        assert!(timeline["authorized"] <= captured, "{id}: {timeline:?}");
        assert!(captured <= timeline["committed"], "{id}: {timeline:?}");
        assert!(captured <= timeline["confirmed"], "{id}: {timeline:?}");
    }
    println!(
        "{ORDERS} tok_ok orders, 10/s, offsets from OrderPlaced:\n{}",
        latency::report(&timelines)
    );
    // Commit to broker ack of the saga's own messages, where the service has it.
    let metrics = sagas.get("/metrics").await.text().await.unwrap_or_default();
    let handoff = metrics
        .lines()
        .filter(|l| l.starts_with("saga_outbox_handoff"));
    println!("{}", handoff.collect::<Vec<_>>().join("\n"));
}
