//! The operator console in a real browser (Debian's headless Chromium via
//! chromedriver): a customer is turned away; an admin finds a demo order
//! with its saga timeline and events, sees the projection lag update, and
//! resolves a parked saga with a note, and skips a dead letter. Screenshots of each step are saved
//! (see `tests::browser`).

use std::time::Duration;

use events::command::Role;
use fantoccini::Locator;
use rdkafka::producer::FutureProducer;
use tests::TestEnv;
use tests::auth::token;
use tests::browser::Browser;
use tests::records::poison;
use tests::shop::{OrderSpec, Shop, terminal_saga};

const LIMIT: Duration = Duration::from_secs(90);
const UI: Duration = Duration::from_secs(20);

fn spec<'a>(token: &'a str) -> OrderSpec<'a> {
    OrderSpec {
        customer: "ada",
        lines: &[("MUG", 1)],
        token,
        country: "US",
    }
}

/// A confirmed order and one whose saga is parked in needs_attention (the
/// provider never answered its capture).
async fn demo_orders(env: &TestEnv, shop: &Shop) -> (String, String) {
    shop.create_item("MUG", 1250, 10).await;
    let happy = shop.place(&spec("tok_ok"), "demo-ok").await;
    let unpaid = shop
        .place(&spec("tok_capture_no_response"), "demo-parked")
        .await;
    assert_eq!(terminal_saga(env, &unpaid, LIMIT).await, "needs_attention");
    assert_eq!(terminal_saga(env, &happy, LIMIT).await, "completed");
    (happy, unpaid)
}

async fn sign_in(browser: &Browser, bearer: &str) {
    let field = browser.wait_for("#token", UI).await;
    field.clear().await.unwrap();
    field.send_keys(bearer).await.unwrap();
    browser.click("#login", UI).await;
}

/// Searches the console for an order.
async fn find_order(browser: &Browser, order_id: &str) {
    let search = browser.wait_for("#order-id", UI).await;
    search.clear().await.unwrap();
    search.send_keys(order_id).await.unwrap();
    browser.click("#find", UI).await;
}

#[tokio::test]
async fn an_admin_finds_an_order_resolves_a_parked_saga_sees_lag_and_skips_a_dead_letter() {
    let env = TestEnv::new();
    let command = env.spawn_command().await;
    let projections = env.spawn_projections().await;
    let query = env.spawn_console(&command, &projections).await;
    env.spawn_sagas().await;
    let shop = Shop {
        command,
        query,
        admin: token(Role::Admin, "ops"),
    };
    let (happy, parked) = demo_orders(&env, &shop).await;

    let browser = Browser::start().await;
    browser
        .client
        .goto(&shop.query.url("/console"))
        .await
        .unwrap();
    // A customer's token opens nothing.
    sign_in(&browser, &token(Role::Customer, "ada")).await;
    browser
        .wait_for_text("#login-error", UI, |t| t.contains("admins only"))
        .await;
    assert!(
        !browser
            .client
            .find(Locator::Id("console"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("console-customer-refused").await;

    sign_in(&browser, &shop.admin).await;
    // Lag per projection, refreshed while the page is open.
    browser
        .wait_for("#lag tr[data-projection='orders'] td.lag-events", UI)
        .await;
    let first = browser
        .wait_for_text("#lag-updated", UI, |t| t.starts_with("updated"))
        .await;
    browser
        .wait_for_text("#lag-updated", UI, |t| {
            t.starts_with("updated") && t != first
        })
        .await;

    // The demo order: state, saga timeline and the raw events of its streams.
    find_order(&browser, &happy).await;
    browser
        .wait_for_text("#order-state dd[data-field='order status']", UI, |t| {
            t == "confirmed"
        })
        .await;
    browser
        .wait_for_text("#saga-state dd[data-field='saga status']", UI, |t| {
            t == "completed"
        })
        .await;
    browser
        .wait_for_text("#saga-steps tbody", UI, |t| t.contains("capturing_payment"))
        .await;
    let events = browser
        .wait_for_text("#events tbody", UI, |t| t.contains("OrderConfirmed"))
        .await;
    for event in ["OrderPlaced", "PaymentCaptured", "ShipmentScheduled"] {
        assert!(events.contains(event), "{event} missing from {events}");
    }
    browser.screenshot("console-order").await;

    // The parked saga: listed, then resolved with a note.
    let row = format!("#attention tr[data-order-id='{parked}']");
    browser.wait_for(&row, UI).await;
    browser.screenshot("console-needs-attention").await;
    let note = browser.wait_for(&format!("{row} input.note"), UI).await;
    note.send_keys("refunded by hand").await.unwrap();
    browser.click(&format!("{row} button.resolve"), UI).await;
    browser
        .wait_for_text("#attention-panel", LIMIT, |t| !t.contains(&parked))
        .await;
    assert_eq!(
        terminal_saga(&env, &parked, LIMIT).await,
        "resolved_by_operator"
    );
    let saga = tests::eventually(LIMIT, || async {
        let saga = shop.read(&format!("/sagas/{parked}")).await?;
        (saga["status"] == "resolved_by_operator").then_some(saga)
    })
    .await
    .expect("the saga view shows the resolution");
    assert_eq!(saga["note"], "refunded by hand");
    find_order(&browser, &parked).await;
    browser
        .wait_for_text("#saga-state dd[data-field='note']", UI, |t| {
            t == "refunded by hand"
        })
        .await;
    browser.screenshot("console-resolved").await;

    // A poison record: its dead letter shows up, and Skip removes it.
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    poison(&producer, &env, "poison").await;
    let letter = "#dead-letters tbody tr[data-id]";
    browser.wait_for(letter, UI).await;
    browser.click(&format!("{letter} button.skip"), UI).await;
    browser
        .wait_for_text("#dead-letters-empty", UI, |t| t.contains("No dead letters"))
        .await;
    browser.close().await;
}
