//! A projector that dies between a batch's PostgreSQL commit and its cache
//! write must not leave the cache behind for good: whoever holds the
//! partition next writes the document again from what PostgreSQL holds.
//!
//! The projector runs as a process of its own, so it can be SIGKILLed, and
//! reaches Redis through a proxy the test cuts: the batch commits, its cache
//! write cannot land, and then the process dies, exactly as if it had been
//! killed between the two. This binary holds a single test.

use std::net::SocketAddr;
use std::time::Duration;

use command::bus::KafkaBus;
use events::command::{DomainCommand, Role};
use events::domain::{OrderId, ShipmentCommand};
use projections::cache::Cache;
use projections::documents;
use serde_json::Value;
use tests::auth::{system, who};
use tests::{TestEnv, eventually};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A TCP forwarder that the test can cut: once cut, open connections are
/// dropped and new ones closed at once, as when Redis becomes unreachable.
struct Proxy {
    addr: SocketAddr,
    cut: CancellationToken,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = CancellationToken::new();
        let token = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if token.is_cancelled() {
                    continue;
                }
                let (token, target) = (token.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        Proxy { addr, cut }
    }
}

/// The `host:port` of the Redis at `url`.
fn target(url: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(6379))
}

/// `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: SocketAddr) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    url.set_ip_host(addr.ip()).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url.to_string()
}

/// A projector process whose cache is `redis_url`.
async fn projector(env: &TestEnv, redis_url: &str) -> tokio::process::Child {
    let binary = env!("CARGO_BIN_EXE_projections-service");
    tests::views::projector_process(binary, env, redis_url)
        .await
        .0
}

/// The cached document of `id` and the shipment version it reflects.
async fn cached(cache: &Cache, id: Uuid) -> Option<(Value, i64)> {
    let entry = cache.order(id).await.ok()??;
    let version = entry.version(events::AggregateType::Shipment);
    Some((serde_json::from_str(&entry.body).ok()?, version))
}

#[tokio::test]
async fn a_cache_write_lost_with_a_killed_projector_is_redone_from_postgres() {
    let env = TestEnv::new();
    let _command = env.spawn_command().await;
    let bus = KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
        .await
        .unwrap();
    let cache = tests::views::cache(&env);
    let pool = projections::db::connect_lazy(&env.views_db_url).unwrap();
    let proxy = Proxy::start(target(&env.redis_url)).await;
    let mut first = projector(&env, &via(&env.redis_url, proxy.addr)).await;

    let order_id = OrderId::from(Uuid::now_v7());
    let id = *order_id.as_uuid();
    let place = tests::processor::place_order("alice", &[("LAMP-1", 1)]);
    let alice = who(Role::Customer, "alice");
    tests::processor::accepted(
        &bus,
        &order_id.to_string(),
        alice,
        DomainCommand::Order(place),
    )
    .await;
    let placed = eventually(Duration::from_secs(30), || cached(&cache, id)).await;
    assert!(placed.is_some(), "the placed order never reached the cache");

    // Redis becomes unreachable for this projector; the shipment's batch
    // commits in PostgreSQL, its cache write fails, and the projector dies.
    proxy.cut.cancel();
    let request = ShipmentCommand::RequestShipment {
        address: tests::processor::address(),
    };
    tests::processor::accepted(
        &bus,
        &order_id.to_string(),
        system(),
        DomainCommand::Shipment(request),
    )
    .await;
    let stored = eventually(Duration::from_secs(30), || async {
        let documents = documents::orders(&pool, &[id]).await.ok()?;
        let document = documents.into_iter().next()?;
        (document.shipment_version == 1).then_some(document)
    })
    .await
    .expect("the shipment never reached PostgreSQL");
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let (_, left) = cached(&cache, id).await.expect("the older entry");
    assert_eq!(left, 0, "the cache write was meant to be lost");

    // The next projector holds the partition and writes what PostgreSQL has.
    let mut second = projector(&env, &env.redis_url).await;
    let expected = serde_json::to_value(&stored).unwrap();
    let converged = eventually(Duration::from_secs(30), || async {
        let (body, version) = cached(&cache, id).await?;
        (version == 1 && body == expected).then_some(())
    })
    .await;
    let now = cached(&cache, id).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
    assert!(
        converged.is_some(),
        "the cache kept {now:?} while PostgreSQL has {expected}"
    );
}
