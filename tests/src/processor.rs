//! Driving the command processors without the HTTP API: catalog commands on
//! the Kafka bus (the path the command API uses), command services as
//! processes that a test can SIGKILL, SIGSTOP and SIGCONT, and the check that
//! a stream of commands was applied exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use command::bus::{CommandBus, Dispatch, KafkaBus};
use events::command::{CommandEnvelope, DomainCommand, Outcome, Reply};
use events::domain::{
    Address, CatalogCommand, CatalogEvent, Currency, CustomerId, Money, OrderCommand, OrderLine,
    Sku,
};
use events::message::EventPayload;
use events::{AggregateType, EventMeta, kafka};
use futures::StreamExt;
use rdkafka::Message;
use uuid::Uuid;

use crate::{TestEnv, read_topic, spawn_process};

pub fn envelope(sku: &str, command: CatalogCommand) -> CommandEnvelope {
    crate::envelope(
        sku,
        crate::auth::operator(),
        DomainCommand::CatalogItem(command),
    )
}

/// `minor` cents of US dollars.
pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

/// The shipping address of the tests' orders (a country the carrier serves).
pub fn address() -> Address {
    Address {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

/// `customer`'s order of `lines` (SKU, quantity) in US dollars, shipped to
/// [`address`] and paid with a token the sandbox provider accepts.
pub fn place_order(customer: &str, lines: &[(&str, u32)]) -> OrderCommand {
    OrderCommand::PlaceOrder {
        customer_id: CustomerId::new(customer).unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: lines
            .iter()
            .map(|&(sku, quantity)| OrderLine {
                sku: Sku::new(sku).unwrap(),
                quantity,
            })
            .collect(),
        shipping_address: address(),
        payment_token: "tok_ok".into(),
    }
}

pub fn create(stock: u32) -> CatalogCommand {
    CatalogCommand::CreateItem {
        name: "Mug".into(),
        unit_price: usd(1250),
        initial_stock: stock,
    }
}

/// `count` restocks of one unit for each SKU, interleaved.
pub fn restocks(skus: &[String], count: usize) -> Vec<CommandEnvelope> {
    (0..count)
        .flat_map(|_| {
            skus.iter()
                .map(|sku| envelope(sku, CatalogCommand::Restock { quantity: 1 }))
        })
        .collect()
}

pub async fn bus(env: &TestEnv) -> Arc<KafkaBus> {
    Arc::new(
        KafkaBus::start(env.kafka.clone(), env.shutdown.child_token())
            .await
            .unwrap(),
    )
}

/// Dispatches `command` and waits for its reply.
pub async fn send(bus: &KafkaBus, command: CommandEnvelope) -> Reply {
    match bus
        .dispatch(command, Duration::from_secs(30))
        .await
        .unwrap()
    {
        Dispatch::Completed(reply) => reply,
        Dispatch::Queued => panic!("no reply within 30s"),
    }
}

/// Sends `command` for aggregate `id` as `by`; answers the version its
/// events reached (panics on a rejection).
pub async fn accepted(
    bus: &KafkaBus,
    id: &str,
    by: events::command::Principal,
    command: events::command::DomainCommand,
) -> u64 {
    let reply = send(bus, crate::envelope(id, by, command)).await;
    match reply.outcome {
        events::command::Outcome::Accepted { version, .. } => version,
        events::command::Outcome::Rejected { .. } => panic!("rejected: {reply:?}"),
    }
}

/// Produces `commands` without waiting for their replies (all at once, so
/// the processors find a backlog).
pub async fn queue(bus: &KafkaBus, commands: &[CommandEnvelope]) {
    futures::stream::iter(commands.iter().cloned())
        .map(|command| bus.dispatch(command, Duration::ZERO))
        .buffer_unordered(256)
        .for_each(|sent| async move {
            sent.unwrap();
        })
        .await;
}

/// The catalog events of one SKU, decoded, in log order.
pub async fn catalog_events(env: &TestEnv, sku: &str) -> Vec<(EventMeta, CatalogEvent)> {
    read_topic(
        &env.kafka,
        &env.kafka.events_topic(AggregateType::CatalogItem),
    )
    .await
    .into_iter()
    .filter(|m| m.key() == Some(sku.as_bytes()))
    .map(|m| {
        let meta = kafka::from_headers(m.headers().unwrap()).unwrap();
        let event = CatalogEvent::decode(&meta, m.payload().unwrap()).unwrap();
        (meta, event)
    })
    .collect()
}

/// Sends every command again, as a client whose request failed would, and
/// checks the log: each SKU's events are numbered without gap or duplicate,
/// every command was applied exactly once, and each retry was answered from
/// the recorded outcome with the version its event got.
pub async fn assert_applied_once(
    env: &TestEnv,
    bus: &KafkaBus,
    skus: &[String],
    commands: &[CommandEnvelope],
) {
    let replies: HashMap<Uuid, Reply> = futures::stream::iter(commands)
        .map(|command| async { (command.command_id, send(bus, command.clone()).await) })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut applied: HashMap<Uuid, u64> = HashMap::new();
    for sku in skus {
        let log = catalog_events(env, sku).await;
        let sequences: Vec<u64> = log.iter().map(|(meta, _)| meta.sequence).collect();
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        assert_eq!(sequences, expected, "{sku}: no gap, no duplicate");
        for (meta, _) in &log[1..] {
            assert!(
                applied.insert(meta.command_id, meta.sequence).is_none(),
                "{} applied twice",
                meta.command_id
            );
        }
    }
    assert_eq!(applied.len(), commands.len(), "every command applied");
    for (id, reply) in &replies {
        let Outcome::Accepted { version, .. } = reply.outcome else {
            panic!("{id} was rejected: {reply:?}");
        };
        assert_eq!(
            Some(&version),
            applied.get(id),
            "the reply names the version the event got"
        );
    }
}

/// A command service in a process of its own.
pub struct Instance {
    process: tokio::process::Child,
    addr: String,
}

impl Instance {
    /// Starts the instance `name` and waits until its processor is ready.
    pub async fn start(binary: &str, env: &TestEnv, name: &str) -> Instance {
        Instance::start_with(binary, env, name, &[]).await
    }

    /// [`start`](Self::start), with more variables (they win).
    pub async fn start_with(
        binary: &str,
        env: &TestEnv,
        name: &str,
        more: &[(&str, String)],
    ) -> Instance {
        let mut vars = vec![
            ("KAFKA_BROKERS", env.kafka.brokers.clone()),
            ("TOPIC_PREFIX", env.kafka.topic_prefix.clone()),
            ("KAFKA_PARTITIONS", env.kafka.partitions.to_string()),
            ("INSTANCE_ID", name.to_owned()),
        ];
        vars.extend_from_slice(more);
        let (process, addr) = spawn_process(binary, &vars).await;
        Instance { process, addr }
    }

    /// The value of a counter in the instance's `/metrics`, summed over its
    /// label sets (0 when absent).
    pub async fn counter(&self, name: &str) -> f64 {
        self.counter_where(name, &[]).await
    }

    /// The sum of a counter's (or a gauge's) samples whose labels include
    /// every one of `labels` (0 when none).
    pub async fn counter_where(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        crate::metric(&self.addr, name, labels).await
    }

    pub async fn kill(mut self) {
        self.process.start_kill().unwrap();
        self.process.wait().await.unwrap();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        crate::signal(self.process.id().expect("a running process"), signal);
    }
}
