//! The saga view end to end: saga events on `sagas.events` (written straight
//! to the topic with the envelope headers the saga worker writes, including
//! a duplicate and an older event delivered late), folded by the projector
//! into `saga_timelines`, served by the query API's `GET /sagas/{order_id}`
//! and `GET /sagas?status=`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::AggregateType;
use events::command::Role;
use events::domain::{CustomerId, SagaEvent, SagaProgress, SagaStatus, StepRecord};
use rdkafka::producer::FutureProducer;
use reqwest::StatusCode;
use serde_json::Value;
use tests::auth::token;
use tests::records::{append, placed};
use tests::{Service, TestEnv, eventually};
use uuid::Uuid;

fn step(name: &str, started_at: DateTime<Utc>, outcome: Option<&str>) -> StepRecord {
    StepRecord {
        step: name.into(),
        started_at,
        attempts: 1,
        outcome: outcome.map(str::to_owned),
    }
}

/// The progress after `steps` steps of a saga of `customer`, carrying the
/// steps that changed as the saga writes them: the one that ended and the
/// one that began.
fn progress(customer: &str, status: SagaStatus, steps: usize) -> SagaProgress {
    let from = steps.saturating_sub(2);
    let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    let names = ["reserving_stock", "authorizing_payment", "voiding_payment"];
    let history: Vec<StepRecord> = names[..steps]
        .iter()
        .enumerate()
        .skip(from)
        .map(|(n, name)| {
            let done = (n + 1 < steps).then_some("succeeded");
            step(name, t0 + chrono::Duration::seconds(n as i64), done)
        })
        .collect();
    SagaProgress {
        customer_id: CustomerId::new(customer).unwrap(),
        status,
        step: names[steps - 1].into(),
        attempt: if steps == 3 { 4 } else { 1 },
        deadline: Some(t0 + chrono::Duration::seconds(600)),
        last_error: (steps == 3).then(|| "provider timed out".to_owned()),
        history_from: from as u32,
        history,
    }
}

async fn get(
    query: &Service,
    path: &str,
    token: &str,
    consistency: Option<&str>,
) -> reqwest::Response {
    let mut request = query.http.get(query.url(path)).bearer_auth(token);
    if let Some(consistency) = consistency {
        request = request.header("X-Consistency-Token", consistency);
    }
    request.send().await.expect("GET failed")
}

async fn ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn problem(response: reqwest::Response, status: StatusCode, kind: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    let expected = format!("https://commerce.example/problems/{kind}");
    assert_eq!(body["type"], expected, "{body}");
}

/// Waits until the saga projection has applied every record up to `last`
/// (the highest offset written per partition).
async fn wait_applied(env: &TestEnv, last: &HashMap<i32, i64>) {
    let views = sqlx::PgPool::connect(&env.views_db_url).await.unwrap();
    let topic = env.kafka.events_topic(AggregateType::Saga);
    let done = eventually(Duration::from_secs(30), || async {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM projection_positions
             WHERE projection = 'sagas' AND topic = $1",
        )
        .bind(&topic)
        .fetch_all(&views)
        .await
        .ok()?;
        let at: HashMap<i32, i64> = rows.into_iter().collect();
        last.iter()
            .all(|(p, offset)| at.get(p).is_some_and(|next| next > offset))
            .then_some(())
    });
    assert!(done.await.is_some(), "the saga projection never caught up");
    views.close().await;
}

struct Sagas {
    parked: Uuid,
    running: Uuid,
}

/// Alice's saga ends parked (with a duplicate and a late older event);
/// Bob's runs. Alice's order is also placed on the orders stream.
async fn write_sagas(env: &TestEnv) -> Sagas {
    let producer: FutureProducer = env.kafka.producer().create().unwrap();
    let (parked, running) = (Uuid::now_v7(), Uuid::now_v7());
    let started = SagaEvent::SagaStarted {
        progress: progress("alice", SagaStatus::Running, 1),
    };
    let stepped = SagaEvent::SagaStepStarted {
        progress: progress("alice", SagaStatus::Running, 2),
    };
    let needs_attention = SagaEvent::SagaNeedsAttention {
        reason: "void keeps failing".into(),
        progress: progress("alice", SagaStatus::NeedsAttention, 3),
    };
    let mut last: HashMap<i32, i64> = HashMap::new();
    let sends = [
        (parked, 1, &started),
        (parked, 3, &needs_attention),
        (parked, 3, &needs_attention),
        (parked, 2, &stepped),
    ];
    let bobs = SagaEvent::SagaStarted {
        progress: progress("bob", SagaStatus::Running, 1),
    };
    for (order, sequence, event) in sends.into_iter().chain([(running, 1, &bobs)]) {
        let (p, o) = append(&producer, env, AggregateType::Saga, order, sequence, event).await;
        let highest = last.entry(p).or_insert(o);
        *highest = (*highest).max(o);
    }
    append(
        &producer,
        env,
        AggregateType::Order,
        parked,
        1,
        &placed("alice"),
    )
    .await;
    wait_applied(env, &last).await;
    Sagas { parked, running }
}

/// Strangers, carriers, bad ids, unknown sagas and tokens the view has not
/// reached get problems.
async fn refusals(query: &Service, sagas: &Sagas) {
    let admin = token(Role::Admin, "ops");
    let path = format!("/sagas/{}", sagas.parked);
    let unknown = format!("/sagas/{}", Uuid::now_v7());
    let parked = sagas.parked.to_string();
    let ahead = tests::consistency_token(events::AggregateType::Saga, &parked, 9);
    let cases = [
        (
            &path,
            token(Role::Customer, "bob"),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            &path,
            token(Role::Carrier, "dhl"),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &"/sagas/nope".to_owned(),
            admin.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            &unknown,
            admin.clone(),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            &path,
            admin.clone(),
            Some(ahead.as_str()),
            StatusCode::SERVICE_UNAVAILABLE,
            "stale_read",
        ),
    ];
    for (path, token, consistency, status, kind) in cases {
        problem(get(query, path, &token, consistency).await, status, kind).await;
    }
}

#[tokio::test]
async fn the_saga_view_shows_the_latest_progress_to_whom_it_may() {
    let env = TestEnv::new();
    env.kafka
        .ensure_topics(&env.kafka.all_topics())
        .await
        .unwrap();
    let projections = env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let sagas = write_sagas(&env).await;
    let admin = token(Role::Admin, "ops");
    let alice = token(Role::Customer, "alice");
    let path = format!("/sagas/{}", sagas.parked);

    let body = ok(get(&query, &path, &admin, None).await).await;
    assert_eq!(body["status"], "needs_attention", "{body}");
    assert_eq!(
        body["version"], 3,
        "the duplicate and the older event change nothing"
    );
    assert_eq!(body["current_step"], "voiding_payment");
    assert_eq!(body["attempt"], 4);
    assert_eq!(body["reason"], "void keeps failing");
    assert_eq!(body["last_error"], "provider timed out");
    assert_eq!(body["last_event"], "SagaNeedsAttention");
    assert!(body["deadline"].is_string());
    let steps: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["reserving_stock", "authorizing_payment", "voiding_payment"]
    );
    assert_eq!(
        body["history"][0]["outcome"], "succeeded",
        "the late event still closes the step only it carried"
    );

    // The customer reads their own saga, with the token of their order or of the saga.
    let parked = sagas.parked.to_string();
    let order_token = tests::consistency_token(events::AggregateType::Order, &parked, 1);
    let mine = ok(get(&query, &path, &alice, Some(&order_token)).await).await;
    assert_eq!(mine["version"], 3);
    let saga_token = tests::consistency_token(events::AggregateType::Saga, &parked, 3);
    ok(get(&query, &path, &alice, Some(&saga_token)).await).await;

    refusals(&query, &sagas).await;

    // Bob's own saga is his.
    let bob = token(Role::Customer, "bob");
    let bobs = ok(get(&query, &format!("/sagas/{}", sagas.running), &bob, None).await).await;
    assert_eq!(bobs["status"], "running");

    let lag = eventually(Duration::from_secs(30), || async {
        let ready: Value = projections.get("/health/ready").await.json().await.ok()?;
        ready["details"]["projections"]["sagas"]
            .as_object()
            .cloned()
    });
    assert!(lag.await.is_some(), "the saga view is in the lag report");
}

#[tokio::test]
async fn operators_list_sagas_by_status_in_pages() {
    let env = TestEnv::new();
    env.kafka
        .ensure_topics(&env.kafka.all_topics())
        .await
        .unwrap();
    env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let sagas = write_sagas(&env).await;
    let admin = token(Role::Admin, "ops");
    let ids = |page: &Value| -> Vec<String> {
        page["sagas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["order_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let parked = ok(get(&query, "/sagas?status=needs_attention", &admin, None).await).await;
    assert_eq!(ids(&parked), [sagas.parked.to_string()]);
    assert_eq!(parked["next_cursor"], Value::Null);
    let running = ok(get(&query, "/sagas?status=running", &admin, None).await).await;
    assert_eq!(ids(&running), [sagas.running.to_string()]);

    let first = ok(get(&query, "/sagas?limit=1", &admin, None).await).await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = ok(get(
        &query,
        &format!("/sagas?limit=1&cursor={cursor}"),
        &admin,
        None,
    )
    .await)
    .await;
    let mut all = [ids(&first), ids(&second)].concat();
    all.sort();
    let mut expected = vec![sagas.parked.to_string(), sagas.running.to_string()];
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(second["next_cursor"], Value::Null);

    let bad = get(&query, "/sagas?status=parked", &admin, None).await;
    problem(bad, StatusCode::BAD_REQUEST, "invalid_status").await;
    let alice = token(Role::Customer, "alice");
    problem(
        get(&query, "/sagas", &alice, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
