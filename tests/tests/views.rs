//! The read side end to end: commands through the Kafka bus (the command
//! API's path), the projector folding all four event streams into
//! PostgreSQL, and the query API serving the views. The answers must equal
//! the fold of the log, honour consistency tokens, page through a customer's
//! history, and refuse bad input and strangers with problem+json.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use command::bus::{CommandBus, Dispatch, KafkaBus};
use events::AggregateType;
use events::command::{DomainCommand, Outcome, Principal, Role};
use events::domain::{
    Address, CatalogCommand, CatalogEvent, Currency, CustomerId, Money, OrderCommand, OrderEvent,
    OrderId, OrderLine, PaymentCommand, PaymentEvent, PricedLine, ShipmentCommand, ShipmentEvent,
    Sku,
};
use projections::views::{catalog_items, order_payments, order_shipments, orders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::StatusCode;
use serde_json::Value;
use tests::{Service, TestEnv, eventually, fold, log};
use uuid::Uuid;

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

fn who(role: Role, subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        role,
    }
}

fn token(principal: &Principal) -> String {
    command::auth::mint_hs256(
        tests::JWT_SECRET.as_bytes(),
        principal,
        Duration::from_secs(600),
    )
    .unwrap()
}

/// Sends a command and answers the aggregate version it produced.
async fn send(bus: &KafkaBus, id: &str, by: Principal, command: DomainCommand) -> u64 {
    let reply = match bus
        .dispatch(tests::envelope(id, by, command), Duration::from_secs(30))
        .await
        .unwrap()
    {
        Dispatch::Completed(reply) => reply,
        Dispatch::Queued => panic!("no reply within 30s"),
    };
    match reply.outcome {
        Outcome::Accepted { version, .. } => version,
        Outcome::Rejected { .. } => panic!("rejected: {reply:?}"),
    }
}

async fn admin_catalog(bus: &KafkaBus, sku: &str, command: CatalogCommand) -> u64 {
    send(
        bus,
        sku,
        who(Role::Admin, "ops"),
        DomainCommand::CatalogItem(command),
    )
    .await
}

/// Places an order of `customer` for 2 units of each SKU; answers its id and version.
async fn place(bus: &KafkaBus, customer: &str, skus: &[&str]) -> (OrderId, u64) {
    let order_id = OrderId::from(Uuid::now_v7());
    let command = OrderCommand::PlaceOrder {
        customer_id: CustomerId::new(customer).unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: skus
            .iter()
            .map(|s| OrderLine {
                sku: Sku::new(*s).unwrap(),
                quantity: 2,
            })
            .collect(),
        shipping_address: Address {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        },
        payment_token: "tok_ok".into(),
    };
    let version = send(
        bus,
        &order_id.to_string(),
        who(Role::Customer, customer),
        DomainCommand::Order(command),
    )
    .await;
    (order_id, version)
}

fn system() -> Principal {
    who(Role::System, "saga")
}

async fn start(env: &TestEnv) -> (Arc<KafkaBus>, Service) {
    let _command = env.spawn_command().await;
    env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let bus = Arc::new(
        KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
            .await
            .unwrap(),
    );
    (bus, query)
}

async fn get(
    query: &Service,
    path: &str,
    bearer: Option<&str>,
    consistency: Option<&str>,
) -> reqwest::Response {
    let mut request = query.http.get(query.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(token) = consistency {
        request = request.header("X-Consistency-Token", token);
    }
    request.send().await.expect("GET failed")
}

/// Polls `path` until its `version` reaches `version`; answers the body.
async fn wait_for_version(
    query: &Service,
    path: &str,
    bearer: Option<&str>,
    version: i64,
) -> Value {
    eventually(Duration::from_secs(30), || async {
        let response = get(query, path, bearer, None).await;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body: Value = response.json().await.unwrap();
        (body["version"].as_i64() >= Some(version)).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("{path} never reached version {version}"))
}

async fn problem(response: reqwest::Response, status: StatusCode, kind: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{kind}")),
        "{body}"
    );
}

#[tokio::test]
async fn the_views_equal_the_fold_of_the_log() {
    let env = TestEnv::new();
    let (bus, query) = start(&env).await;
    let admin = token(&who(Role::Admin, "ops"));

    let create = |price, stock| CatalogCommand::CreateItem {
        name: "Mug".into(),
        unit_price: usd(price),
        initial_stock: stock,
    };
    admin_catalog(&bus, "SKU-A", create(1250, 10)).await;
    admin_catalog(&bus, "SKU-B", create(300, 5)).await;
    admin_catalog(&bus, "SKU-A", CatalogCommand::Restock { quantity: 5 }).await;
    admin_catalog(
        &bus,
        "SKU-B",
        CatalogCommand::ChangePrice {
            unit_price: usd(350),
        },
    )
    .await;

    let (order, _) = place(&bus, "cust-1", &["SKU-A", "SKU-B"]).await;
    let id = order.to_string();
    for (sku, quantity) in [("SKU-A", 2), ("SKU-B", 2)] {
        admin_catalog(
            &bus,
            sku,
            CatalogCommand::ReserveStock {
                order_id: order,
                quantity,
            },
        )
        .await;
    }
    admin_catalog(
        &bus,
        "SKU-A",
        CatalogCommand::ReserveStock {
            order_id: OrderId::from(Uuid::now_v7()),
            quantity: 100,
        },
    )
    .await;
    admin_catalog(
        &bus,
        "SKU-B",
        CatalogCommand::CommitStock { order_id: order },
    )
    .await;
    let lines = vec![
        PricedLine {
            sku: Sku::new("SKU-A").unwrap(),
            quantity: 2,
            unit_price: usd(1250),
        },
        PricedLine {
            sku: Sku::new("SKU-B").unwrap(),
            quantity: 2,
            unit_price: usd(350),
        },
    ];
    send(
        &bus,
        &id,
        system(),
        DomainCommand::Order(OrderCommand::PriceOrder {
            lines,
            total: usd(3200),
        }),
    )
    .await;
    let payment = PaymentCommand::RequestAuthorization {
        amount: usd(3200),
        token: "tok_ok".into(),
    };
    send(&bus, &id, system(), DomainCommand::Payment(payment)).await;
    send(
        &bus,
        &id,
        system(),
        DomainCommand::Payment(PaymentCommand::RecordAuthorized {
            provider_ref: "p-1".into(),
        }),
    )
    .await;
    let address = Address {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    };
    send(
        &bus,
        &id,
        system(),
        DomainCommand::Shipment(ShipmentCommand::RequestShipment { address }),
    )
    .await;
    let order_version = send(
        &bus,
        &id,
        system(),
        DomainCommand::Order(OrderCommand::ConfirmOrder),
    )
    .await;

    // The log, folded with the projector's own pure folds, is the expectation.
    let catalog = log::<CatalogEvent>(&env, AggregateType::CatalogItem).await;
    for sku in ["SKU-A", "SKU-B"] {
        let expected = fold(&catalog[sku], catalog_items::evolve).unwrap();
        let body = wait_for_version(
            &query,
            &format!("/catalog/items/{sku}"),
            None,
            expected.version,
        )
        .await;
        assert_eq!(body["sku"], sku);
        assert_eq!(
            body["unit_price"],
            serde_json::json!({"minor": expected.unit_price_minor, "currency": "USD"})
        );
        assert_eq!(body["on_hand"], expected.on_hand);
        assert_eq!(body["reserved"], expected.reserved);
        assert_eq!(body["available"], expected.available());
        assert_eq!(body["version"], expected.version);
    }
    let a = fold(&catalog["SKU-A"], catalog_items::evolve).unwrap();
    assert_eq!(
        (a.on_hand, a.reserved, a.unit_price_minor),
        (15, 2, 1250),
        "the refused reservation reserved nothing"
    );
    let b = fold(&catalog["SKU-B"], catalog_items::evolve).unwrap();
    assert_eq!((b.on_hand, b.reserved, b.unit_price_minor), (3, 0, 350));

    let expected = fold(
        &log::<OrderEvent>(&env, AggregateType::Order).await[&id],
        orders::evolve,
    )
    .unwrap();
    assert_eq!(expected.version, i64::try_from(order_version).unwrap());
    let payments = log::<PaymentEvent>(&env, AggregateType::Payment).await;
    let shipments = log::<ShipmentEvent>(&env, AggregateType::Shipment).await;
    let payment = fold(&payments[&id], order_payments::evolve).unwrap();
    let shipment = fold(&shipments[&id], order_shipments::evolve).unwrap();
    let path = format!("/orders/{id}");
    let body = eventually(Duration::from_secs(30), || async {
        let body: Value = get(&query, &path, Some(&admin), None)
            .await
            .json()
            .await
            .ok()?;
        let timeline = body["timeline"].as_array().map_or(0, Vec::len);
        (body["version"] == expected.version && timeline == 6).then_some(body)
    })
    .await
    .expect("the order view never caught up with the log");
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["status"], expected.status.as_str());
    assert_eq!(body["customer_id"], "cust-1");
    assert_eq!(
        body["lines"],
        serde_json::to_value(&expected.lines.0).unwrap()
    );
    assert_eq!(
        body["lines"][1]["unit_price"],
        serde_json::json!({"minor": 350, "currency": "USD"})
    );
    assert_eq!(
        body["total"],
        serde_json::json!({"minor": 3200, "currency": "USD"})
    );
    assert_eq!(body["payment_status"], payment.status.as_str());
    assert_eq!(body["payment_status"], "authorized");

    // The confirmation counts once in each bucket size of the sales view.
    let now = Utc::now();
    let (from, to) = (
        now - chrono::Duration::hours(2),
        now + chrono::Duration::hours(1),
    );
    for bucket in ["minute", "hour", "day"] {
        let path = format!(
            "/sales?from={}&to={}&bucket={bucket}&currency=USD",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let report: Value = get(&query, &path, Some(&admin), None)
            .await
            .json()
            .await
            .unwrap();
        let buckets = report["buckets"].as_array().unwrap();
        let orders: i64 = buckets.iter().map(|b| b["orders"].as_i64().unwrap()).sum();
        let revenue: i64 = buckets
            .iter()
            .map(|b| b["revenue"]["minor"].as_i64().unwrap())
            .sum();
        assert_eq!((orders, revenue), (1, 3200), "{bucket}: {report}");
    }
    assert_eq!(body["shipment_status"], shipment.status.as_str());
    let types: Vec<&str> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "OrderPlaced",
        "OrderPriced",
        "PaymentAuthorizationRequested",
        "PaymentAuthorized",
        "ShipmentRequested",
        "OrderConfirmed",
    ] {
        assert!(types.contains(&expected), "{types:?}");
    }
    assert!(
        !body.to_string().contains("tok_ok"),
        "the payment token never leaves the write side"
    );
}

#[tokio::test]
async fn reads_wait_for_consistency_tokens_and_histories_page() {
    let env = TestEnv::new();
    let (bus, query) = start(&env).await;
    let customer = token(&who(Role::Customer, "cust-p"));

    // Warm up: the projector has joined its group once the first order shows.
    let (first, _) = place(&bus, "cust-p", &["SKU-X"]).await;
    wait_for_version(&query, &format!("/orders/{first}"), Some(&customer), 1).await;

    let mut placed = vec![first];
    for _ in 0..4 {
        placed.push(place(&bus, "cust-p", &["SKU-X"]).await.0);
    }
    place(&bus, "someone-else", &["SKU-X"]).await;
    let (last, version) = place(&bus, "cust-p", &["SKU-X"]).await;
    placed.push(last);

    // Read-your-writes with the token a command answer carries.
    let dotted = tests::consistency_token(events::AggregateType::Order, &last.to_string(), version);
    let response = get(
        &query,
        &format!("/orders/{last}"),
        Some(&customer),
        Some(&dotted),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["version"].as_u64()),
        (Some("pending"), Some(version))
    );
    let response = get(
        &query,
        "/customers/cust-p/orders?limit=1",
        Some(&customer),
        Some(&dotted),
    )
    .await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(
        page["orders"][0]["order_id"],
        last.to_string(),
        "the newest order comes first"
    );

    // Pages of 2 walk the whole history, newest first, each order once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/customers/cust-p/orders?limit=2&cursor={c}"),
            None => "/customers/cust-p/orders?limit=2".to_owned(),
        };
        let page: Value = get(&query, &path, Some(&customer), None)
            .await
            .json()
            .await
            .unwrap();
        let orders = page["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        seen.extend(
            orders
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = placed.iter().rev().map(ToString::to_string).collect();
    assert_eq!(seen, expected);

    // A version the log never reached: a plain 503, never an old answer.
    let ahead = tests::consistency_token(events::AggregateType::Order, &last.to_string(), 99);
    let response = get(
        &query,
        &format!("/orders/{last}"),
        Some(&customer),
        Some(&ahead),
    )
    .await;
    problem(response, StatusCode::SERVICE_UNAVAILABLE, "stale_read").await;
}

#[tokio::test]
async fn strangers_and_bad_input_get_problem_json() {
    let env = TestEnv::new();
    let (bus, query) = start(&env).await;
    let owner = token(&who(Role::Customer, "owner"));
    let stranger = token(&who(Role::Customer, "stranger"));
    let admin = token(&who(Role::Admin, "ops"));
    // A poison record ahead of the order: dead-lettered, and the rest flows on.
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    let topic = env.kafka.events_topic(AggregateType::Order);
    let poison = FutureRecord::<str, [u8]>::to(&topic)
        .key("poison")
        .payload(b"{not json");
    producer.send(poison, Duration::from_secs(5)).await.unwrap();
    let (order, _) = place(&bus, "owner", &["SKU-Y"]).await;
    let path = format!("/orders/{order}");
    wait_for_version(&query, &path, Some(&owner), 1).await;
    let views = sqlx::PgPool::connect(&env.views_db_url).await.unwrap();
    let dead = eventually(Duration::from_secs(30), || async {
        let sql = "SELECT error FROM dead_letters WHERE projection = 'orders'";
        sqlx::query_scalar::<_, String>(sql)
            .fetch_optional(&views)
            .await
            .ok()?
    });
    assert!(
        dead.await.unwrap().contains("ce_"),
        "the error names the missing header"
    );
    views.close().await;
    let openapi = get(&query, "/openapi.json", None, None).await;
    assert_eq!(openapi.status(), StatusCode::OK);
    let openapi: Value = openapi.json().await.unwrap();
    assert!(openapi["paths"]["/sales"].is_object());
    let asyncapi: Value = get(&query, "/asyncapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        asyncapi["channels"]["ordersEvents"]["address"],
        "orders.events"
    );
    // Operators see it through the query API, newest first.
    let letters: Value = get(&query, "/dead-letters?limit=5", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    let first = &letters["dead_letters"][0];
    assert_eq!(
        (first["key"].as_str(), first["projection"].as_str()),
        (Some("poison"), Some("orders"))
    );
    assert_eq!(first["payload"], "{not json");

    assert_eq!(
        get(&query, &path, Some(&admin), None).await.status(),
        StatusCode::OK
    );
    let history: Value = get(&query, "/customers/owner/orders", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["orders"].as_array().unwrap().len(), 1);

    let forged = command::auth::mint_hs256(
        b"another-secret-of-thirty-two-byt",
        &who(Role::Admin, "ops"),
        Duration::from_secs(60),
    );
    let forged = forged.unwrap();
    let missing = format!("/orders/{}", Uuid::now_v7());
    let (bad, unauthorized, absent) = (
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
        StatusCode::NOT_FOUND,
    );
    let history = "/customers/owner/orders";
    let (limit_high, limit_zero) = (format!("{history}?limit=101"), format!("{history}?limit=0"));
    let cursor = format!("{history}?cursor=garbage!");
    #[rustfmt::skip]
    let cases: [BadRead; 21] = [
        // Another customer's order and history look exactly like missing ones.
        (&path, Some(&stranger), None, absent, "not_found"),
        (&missing, Some(&stranger), None, absent, "not_found"),
        (history, Some(&stranger), None, absent, "not_found"),
        (&path, None, None, unauthorized, "unauthorized"),
        (&path, Some(&forged), None, unauthorized, "unauthorized"),
        (&limit_high, Some(&owner), None, bad, "invalid_limit"),
        (&limit_zero, Some(&owner), None, bad, "invalid_limit"),
        (&cursor, Some(&owner), None, bad, "invalid_cursor"),
        (&path, Some(&owner), Some("v1.orders.x.y"), bad, "invalid_consistency_token"),
        ("/orders/not-a-uuid", Some(&owner), None, bad, "invalid_id"),
        ("/catalog/items/bad%20sku", None, None, bad, "invalid_id"),
        ("/catalog/items/NO-SUCH-SKU", None, None, absent, "not_found"),
        ("/no/such/route", None, None, absent, "not_found"),
        ("/dead-letters", Some(&owner), None, StatusCode::FORBIDDEN, "forbidden"),
        ("/dead-letters?cursor=%21", Some(&admin), None, bad, "invalid_cursor"),
        ("/dead-letters?limit=1000", Some(&admin), None, bad, "invalid_limit"),
        (SALES_REVERSED, Some(&admin), None, bad, "invalid_range"),
        (SALES_TOO_LONG, Some(&admin), None, bad, "invalid_range"),
        ("/sales?from=yesterday&to=today", Some(&admin), None, bad, "invalid_range"),
        (SALES_WEEKLY, Some(&admin), None, bad, "invalid_bucket"),
        (SALES_WEEKLY, Some(&owner), None, StatusCode::FORBIDDEN, "forbidden"),
    ];
    for (path, bearer, consistency, status, kind) in cases {
        problem(get(&query, path, bearer, consistency).await, status, kind).await;
    }
}

const SALES_REVERSED: &str = "/sales?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z";
const SALES_TOO_LONG: &str =
    "/sales?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucket=minute";
const SALES_WEEKLY: &str = "/sales?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=week";

/// A read that must fail: path, bearer token, consistency token, status, problem kind.
type BadRead<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    StatusCode,
    &'a str,
);
