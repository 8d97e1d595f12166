//! One order, one trace: the command service, the saga worker (with its
//! gateway) and the projector run as processes of their own exporting to the
//! stack's Jaeger (`scripts/stack up --tracing`, started here if it is not
//! running), an order is placed under a caller's `traceparent`, and Jaeger's
//! own query API must hold one trace in which every hop is a descendant of
//! the hop that caused it, and starts no earlier.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use events::command::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::auth::token;
use tests::{TestEnv, eventually, spawn_process};
use uuid::Uuid;

fn port(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// Starts Jaeger through the stack script (idempotent: a running one stays).
fn jaeger_up() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let stack_dir = std::env::var_os("STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".stack"));
    let status = std::process::Command::new(repo.join("scripts/stack"))
        .args(["up", "--tracing"])
        .env("STACK_DIR", stack_dir)
        .status()
        .expect("running scripts/stack up --tracing");
    assert!(status.success(), "scripts/stack up --tracing failed");
}

/// A span as Jaeger's query API (`/api/traces/{id}`) answers it.
#[derive(Debug)]
struct Span {
    service: String,
    name: String,
    parent: Option<String>,
    start: u64,
}

/// The spans of `trace_id` by span id, once Jaeger has the trace.
async fn trace(http: &reqwest::Client, trace_id: &str) -> Option<HashMap<String, Span>> {
    let url = format!(
        "http://127.0.0.1:{}/api/traces/{trace_id}",
        port("JAEGER_UI_PORT", 16686)
    );
    let body: Value = http.get(url).send().await.ok()?.json().await.ok()?;
    let trace = body["data"].get(0)?;
    let services: HashMap<&str, &str> = trace["processes"]
        .as_object()?
        .iter()
        .filter_map(|(id, p)| Some((id.as_str(), p["serviceName"].as_str()?)))
        .collect();
    let spans = trace["spans"].as_array()?.iter().filter_map(|s| {
        let parent = s["references"]
            .as_array()
            .and_then(|refs| refs.iter().find(|r| r["refType"] == "CHILD_OF"))
            .and_then(|r| r["spanID"].as_str())
            .map(str::to_owned);
        let span = Span {
            service: services.get(s["processID"].as_str()?)?.to_string(),
            name: s["operationName"].as_str()?.to_owned(),
            parent,
            start: s["startTime"].as_u64()?,
        };
        Some((s["spanID"].as_str()?.to_owned(), span))
    });
    Some(spans.collect())
}

/// The span ids of `service`'s spans named `name`.
fn named<'a>(spans: &'a HashMap<String, Span>, service: &str, name: &str) -> Vec<&'a str> {
    spans
        .iter()
        .filter(|(_, s)| s.service == service && s.name == name)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// Whether `ancestor` is on `span`'s chain of parents.
fn descends(spans: &HashMap<String, Span>, span: &str, ancestor: &str) -> bool {
    let mut at = spans.get(span).and_then(|s| s.parent.as_deref());
    while let Some(id) = at {
        if id == ancestor {
            return true;
        }
        at = spans.get(id).and_then(|s| s.parent.as_deref());
    }
    false
}

/// A span of `(service, name)` below one of `ancestors`, starting no earlier.
fn caused<'a>(
    spans: &'a HashMap<String, Span>,
    ancestors: &[&str],
    service: &str,
    name: &str,
) -> Vec<&'a str> {
    named(spans, service, name)
        .into_iter()
        .filter(|id| {
            ancestors.iter().any(|a| {
                descends(spans, id, a) && spans[*id].start >= spans.get(*a).map_or(0, |s| s.start)
            })
        })
        .collect()
}

/// The hops an order's trace must show, each caused by the one before.
fn causal_chain(spans: &HashMap<String, Span>) -> Result<(), String> {
    let post = named(spans, "command", "POST /orders");
    let placed = caused(spans, &post, "command", "decide PlaceOrder");
    let saga = caused(spans, &placed, "sagas", "saga on OrderPlaced");
    let reserve = caused(spans, &saga, "command", "decide ReserveStock");
    let authorize_asked = caused(spans, &saga, "command", "decide RequestAuthorization");
    let gateway = caused(spans, &authorize_asked, "sagas", "gateway authorize");
    let answered = caused(spans, &gateway, "command", "decide RecordAuthorized");
    let projected = caused(spans, &placed, "projections", "project OrderPlaced");
    let chain = [
        ("POST /orders", post.len()),
        ("decide PlaceOrder", placed.len()),
        ("saga on OrderPlaced", saga.len()),
        ("decide ReserveStock", reserve.len()),
        ("decide RequestAuthorization", authorize_asked.len()),
        ("gateway authorize", gateway.len()),
        ("decide RecordAuthorized", answered.len()),
        ("project OrderPlaced", projected.len()),
    ];
    match chain.iter().find(|(_, found)| *found == 0) {
        None => Ok(()),
        Some((missing, _)) => Err(format!("no causally placed span {missing:?}")),
    }
}

#[tokio::test]
async fn one_order_is_one_trace_across_every_service() {
    jaeger_up();
    let env = TestEnv::new();
    let otlp = format!("http://127.0.0.1:{}", port("OTLP_HTTP_PORT", 14318));
    let traced = |mut vars: Vec<(&'static str, String)>| {
        vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()));
        vars.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
        vars.extend([
            ("KAFKA_BROKERS", env.kafka.brokers.clone()),
            ("TOPIC_PREFIX", env.kafka.topic_prefix.clone()),
            ("KAFKA_PARTITIONS", env.kafka.partitions.to_string()),
        ]);
        vars
    };
    let command = traced(vec![("INSTANCE_ID", format!("t{}-command", env.id))]);
    let (_command, command) = spawn_process(env!("CARGO_BIN_EXE_command-service"), &command).await;
    let sagas = traced(vec![
        ("SAGAS_GROUP_ID", format!("t{}-sagas", env.id)),
        ("SAGAS_DATABASE_URL", env.sagas_db_url.clone()),
        ("SAGAS_PACE_MS", tests::TEST_PACE_MS.to_string()),
    ]);
    let (_sagas, _) = spawn_process(env!("CARGO_BIN_EXE_sagas-service"), &sagas).await;
    let projections = traced(vec![
        ("GROUP_ID", format!("t{}-projections", env.id)),
        ("DATABASE_URL", env.views_db_url.clone()),
        ("REDIS_URL", env.redis_url.clone()),
    ]);
    let (_projections, _) =
        spawn_process(env!("CARGO_BIN_EXE_projections-service"), &projections).await;

    let http = reqwest::Client::new();
    let post = |path: &str, bearer: String, key: &str, body: Value| {
        http.post(format!("http://{command}{path}"))
            .bearer_auth(bearer)
            .header("Idempotency-Key", key)
            .json(&body)
    };
    let item =
        json!({"sku": "MUG-T", "name": "Mug", "unit_price": 1200, "currency": "USD", "stock": 5});
    let created = post("/catalog/items", token(Role::Admin, "ops"), "item", item)
        .send()
        .await
        .expect("creating an item");
    assert_eq!(created.status(), StatusCode::CREATED);

    // The caller's own trace context: the order's spans must join it.
    let trace_id = Uuid::new_v4().simple().to_string();
    let order = json!({
        "currency": "USD",
        "lines": [{"sku": "MUG-T", "quantity": 1}],
        "shipping_address": {"name": "Ada", "line1": "1 Loop Rd", "city": "Springfield",
                             "postal_code": "12345", "country": "US"},
        "payment": {"token": "tok_ok"}
    });
    let placed = post("/orders", token(Role::Customer, "ada"), "order-1", order)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("placing an order");
    assert!(placed.status().is_success(), "{}", placed.status());
    let answered = placed
        .headers()
        .get("traceresponse")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        answered.as_deref().is_some_and(|t| t.contains(&trace_id)),
        "traceresponse {answered:?} names the caller's trace"
    );

    let last = std::sync::Mutex::new(String::from("no trace yet"));
    let found = eventually(Duration::from_secs(60), || async {
        let spans = trace(&http, &trace_id).await?;
        let chain = causal_chain(&spans);
        let found = chain.is_ok().then_some(());
        if let Err(why) = chain {
            *last.lock().unwrap() = why;
        }
        found
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(found.is_some(), "trace {trace_id} in Jaeger: {last}");
}
