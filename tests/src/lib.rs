//! Helpers for end-to-end tests against the real stack (`scripts/stack up`).
//!
//! Each [`TestEnv`] gets its own topic prefix and its own databases, so tests
//! run in parallel and in any order. Services run in-process on port 0 with
//! the same `run` functions the binaries call.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use events::KafkaConfig;
use sqlx::migrate::MigrateDatabase;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub mod auth;
pub mod browser;
pub mod chaos;
pub mod latency;
pub mod processor;
pub mod records;
pub mod shop;
pub mod views;

/// A command as the command API would envelope it for `by`: a fresh command
/// id (also the correlation and causation), no expected version, and the
/// API's own fingerprint.
pub fn envelope(
    aggregate_id: &str,
    by: events::command::Principal,
    command: events::command::DomainCommand,
) -> events::command::CommandEnvelope {
    let command_id = events::new_id();
    events::command::CommandEnvelope {
        command_id,
        aggregate_id: aggregate_id.into(),
        expected_version: None,
        issued_at: chrono::Utc::now(),
        correlation_id: command_id,
        causation_id: command_id,
        traceparent: None,
        fingerprint: events::command::CommandEnvelope::fingerprint_of(aggregate_id, None, &command),
        issued_by: by,
        command,
    }
}

/// Where the stack listens; the defaults are those of `scripts/stack`.
pub fn kafka_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

pub fn postgres_url() -> String {
    std::env::var("POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:15432".into())
}

/// `REDIS_URL`, else the stack's Redis with the password `scripts/stack`
/// keeps in its secrets folder (a Redis it started before it set passwords
/// has none).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| {
        let stack = std::env::var_os("STACK_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.stack"));
        match std::fs::read_to_string(stack.join("secrets/redis")) {
            Ok(password) if !password.trim().is_empty() => {
                format!("redis://:{}@127.0.0.1:16379", password.trim())
            }
            _ => "redis://127.0.0.1:16379".into(),
        }
    })
}

/// The HS256 secret the in-process services are started with (32 bytes,
/// the shortest a service accepts).
pub const JWT_SECRET: &str = "test-secret-of-thirty-two-bytes!";

/// The token settings of the in-process services.
pub fn auth_config() -> events::auth::AuthConfig {
    events::auth::AuthConfig::hs256(JWT_SECRET)
}

/// A consistency token as the in-process command services sign it.
pub fn consistency_token(aggregate: events::AggregateType, id: &str, version: u64) -> String {
    events::consistency::consistency_token(aggregate, id, version, &auth_config().signing)
}

/// A nominal second of the saga's timeouts in tests: a payment that never
/// answers is given up after 3 x 60 of them (9 s).
pub const TEST_PACE_MS: u32 = 50;

/// The HTTP limits of services in tests: the production defaults without
/// the per-caller rate limit, since a test polls from one address as fast
/// as it likes (the limits test turns it on).
pub fn test_http() -> events::http::HttpConfig {
    events::http::HttpConfig {
        rate: None,
        ..events::http::HttpConfig::default()
    }
}

/// One test's private slice of the stack.
pub struct TestEnv {
    pub id: String,
    pub kafka: KafkaConfig,
    pub views_db_url: String,
    pub sagas_db_url: String,
    pub redis_url: String,
    pub shutdown: CancellationToken,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let kafka = KafkaConfig {
            topic_prefix: format!("t{id}."),
            partitions: 2,
            ..KafkaConfig::new(kafka_brokers())
        };
        TestEnv {
            views_db_url: format!("{}/t{id}_views", postgres_url()),
            sagas_db_url: format!("{}/t{id}_sagas", postgres_url()),
            redis_url: redis_url(),
            kafka,
            id,
            shutdown: CancellationToken::new(),
        }
    }

    pub fn spawn_command(&self) -> impl Future<Output = Service> + '_ {
        self.spawn_command_with(self.command_config())
    }

    /// The command service's settings in tests (no rate limit).
    pub fn command_config(&self) -> command::Config {
        command::Config {
            kafka: self.kafka.clone(),
            instance_id: format!("t{}-command", self.id),
            auth: auth_config(),
            query_api_url: "http://127.0.0.1:8081".into(),
            reply_wait: Duration::from_secs(5),
            lanes: 2,
            // scripts/test gives the suite a folder of its own, which it
            // empties first (the processors keep their tables there).
            state_dir: std::env::var_os("COMMAND_STATE_DIR")
                .map_or_else(command::default_state_dir, std::path::PathBuf::from),
            http: test_http(),
        }
    }

    pub fn spawn_command_with(
        &self,
        config: command::Config,
    ) -> impl Future<Output = Service> + '_ {
        self.spawn(move |listener, shutdown| command::run(config, listener, shutdown))
    }

    /// The read models' flags as this test's slice of the stack sets them.
    pub fn views(&self) -> events::args::ViewsArgs {
        events::args::ViewsArgs {
            database_url: self.views_db_url.clone(),
            redis_url: self.redis_url.clone(),
        }
    }

    pub fn spawn_projections(&self) -> impl Future<Output = Service> + '_ {
        let group = format!("t{}-projections", self.id);
        let config =
            projections::Config::new(self.kafka.clone(), group, self.views(), auth_config());
        self.spawn(move |listener, shutdown| projections::run(config, listener, shutdown))
    }

    pub fn spawn_query_api(&self) -> impl Future<Output = Service> + '_ {
        self.spawn_query_api_with(self.query_api_config())
    }

    /// The query API's settings in tests (no rate limit).
    pub fn query_api_config(&self) -> query_api::Config {
        query_api::Config {
            http: test_http(),
            ..query_api::Config::new(self.views(), auth_config())
        }
    }

    pub fn spawn_query_api_with(
        &self,
        config: query_api::Config,
    ) -> impl Future<Output = Service> + '_ {
        self.spawn(move |listener, shutdown| query_api::run(config, listener, shutdown))
    }

    /// The query API with its operator console passing actions on to
    /// `command` and `projections`.
    pub fn spawn_console(
        &self,
        command: &Service,
        projections: &Service,
    ) -> impl Future<Output = Service> + '_ {
        let config = query_api::Config {
            command_url: command.url(""),
            projections_url: projections.url(""),
            ..self.query_api_config()
        };
        self.spawn(move |listener, shutdown| query_api::run(config, listener, shutdown))
    }

    pub fn spawn_sagas(&self) -> impl Future<Output = Service> + '_ {
        self.spawn_sagas_with(self.sagas_config())
    }

    pub fn spawn_sagas_with(&self, config: sagas::Config) -> impl Future<Output = Service> + '_ {
        self.spawn(move |listener, shutdown| sagas::run(config, listener, shutdown))
    }

    /// The saga worker's settings in tests: deadlines run 50 times faster.
    pub fn sagas_config(&self) -> sagas::Config {
        sagas::Config {
            kafka: self.kafka.clone(),
            database_url: self.sagas_db_url.clone(),
            group_id: format!("t{}-sagas", self.id),
            pace: sagas::Pace {
                millis_per_second: TEST_PACE_MS,
            },
            sandbox: true,
            sandbox_latency: Duration::from_millis(1),
            max_open_orders: 0,
        }
    }

    pub async fn spawn<F, Fut>(&self, run: F) -> Service
    where
        F: FnOnce(TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding port 0");
        let addr = listener.local_addr().expect("local address");
        let task = run(listener, self.shutdown.child_token());
        tokio::spawn(async move {
            if let Err(e) = task.await {
                panic!("service at {addr} failed: {e:#}");
            }
        });
        let service = Service::new(addr);
        service.wait_ready().await;
        service
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl Drop for TestEnv {
    /// Stops the test's services and removes its topics and databases, so a
    /// long-lived stack does not fill up with test leftovers.
    fn drop(&mut self) {
        self.shutdown.cancel();
        let kafka = self.kafka.clone();
        let databases = [self.views_db_url.clone(), self.sagas_db_url.clone()];
        // Drop cannot await; a helper thread with its own runtime can.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building the cleanup runtime");
            runtime.block_on(async {
                // Give in-process services a moment to close their connections.
                tokio::time::sleep(Duration::from_millis(200)).await;
                drop(kafka.delete_prefixed_topics().await);
                for url in databases {
                    drop(sqlx::Postgres::force_drop_database(&url).await);
                }
            });
        });
        drop(cleanup.join());
    }
}

/// The sum of a counter's (or a gauge's) samples in the `/metrics` of the
/// service at `addr` whose labels include every one of `labels` (0 when none).
pub async fn metric(addr: impl std::fmt::Display, name: &str, labels: &[(&str, &str)]) -> f64 {
    let url = format!("http://{addr}/metrics");
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(|line| line.split([' ', '{']).next() == Some(name))
        .filter(|line| wanted.iter().all(|label| line.contains(label.as_str())))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A service started by a test, with an HTTP client pointed at it.
pub struct Service {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
}

impl Service {
    fn new(addr: SocketAddr) -> Service {
        Service {
            addr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("building the http client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET failed")
    }

    /// Polls `/health/ready` until it answers 200.
    pub async fn wait_ready(&self) {
        eventually(Duration::from_secs(60), || async {
            match self.http.get(self.url("/health/ready")).send().await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => None,
            }
        })
        .await
        .unwrap_or_else(|| panic!("service at {} never became ready", self.addr));
    }
}

/// Polls `probe` until it returns `Some`, or gives up after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record of every partition of `topic`, read_committed, in partition
/// then offset order, up to the end of the log.
pub async fn read_topic(kafka: &KafkaConfig, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::{Offset, TopicPartitionList};
    // Assigned, never subscribed: a group id is required but no group is joined.
    let mut config = kafka.consumer("test-reader");
    config.set("enable.partition.eof", "true");
    let topic = topic.to_owned();
    let partitions = kafka.partitions;
    tokio::task::spawn_blocking(move || {
        let mut records = Vec::new();
        for partition in 0..partitions {
            let consumer: BaseConsumer = config.create().expect("creating a consumer");
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, partition, Offset::Beginning)
                .unwrap();
            consumer.assign(&list).unwrap();
            loop {
                match consumer.poll(Duration::from_secs(30)) {
                    Some(Ok(message)) => records.push(message.detach()),
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => panic!("reading {topic}: {e}"),
                    None => panic!("reading {topic}/{partition}: no end within 30s"),
                }
            }
        }
        records
    })
    .await
    .expect("reading the topic")
}

/// Every event of `stream`, decoded, grouped by aggregate id in log order:
/// the log a view must equal the fold of.
pub async fn log<E: events::message::EventPayload>(
    env: &TestEnv,
    stream: events::AggregateType,
) -> std::collections::HashMap<String, Vec<(events::EventMeta, E)>> {
    use rdkafka::Message;
    let mut by_id: std::collections::HashMap<String, Vec<(events::EventMeta, E)>> =
        std::collections::HashMap::new();
    for message in read_topic(&env.kafka, &env.kafka.events_topic(stream)).await {
        let meta = events::kafka::from_headers(message.headers().expect("headers"))
            .expect("envelope headers");
        let event = E::decode(&meta, message.payload().expect("payload")).expect("an event");
        by_id
            .entry(meta.aggregate_id.clone())
            .or_default()
            .push((meta, event));
    }
    by_id
}

/// Folds one aggregate's events with a view's `evolve`, as the projector does.
pub fn fold<R, E>(
    events: &[(events::EventMeta, E)],
    evolve: fn(Option<R>, &events::EventMeta, &E) -> Option<R>,
) -> Option<R> {
    events
        .iter()
        .fold(None, |row, (meta, event)| evolve(row, meta, event))
}

/// Killing and restarting components of the shared stack, for the outage
/// tests. Each such test lives alone in its binary: cargo runs test binaries
/// one after another, so no other test sees the outage.
pub mod outage {
    use std::path::PathBuf;

    /// Where `scripts/stack` keeps its state (`scripts/test` exports it).
    fn stack_dir() -> PathBuf {
        std::env::var_os("STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".stack"))
    }

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// SIGKILLs a stack component (`kafka` or `redis`) and returns a guard
    /// that brings the stack back up when dropped, even if the test fails.
    #[must_use = "the component comes back when the guard is dropped"]
    pub fn kill(component: &str) -> RestartOnDrop {
        let pidfile = stack_dir().join(component).join("pid");
        let pid = std::fs::read_to_string(&pidfile).expect("the component's pid file");
        let status = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("running kill");
        assert!(status.success(), "killing {component} failed");
        RestartOnDrop
    }

    /// Shuts PostgreSQL down at once (SIGQUIT: no checkpoint, so the next
    /// start recovers from the write-ahead log, as after a crash) and
    /// returns the guard that starts it again.
    #[must_use = "PostgreSQL comes back when the guard is dropped"]
    pub fn stop_postgres() -> RestartOnDrop {
        let pidfile = stack_dir().join("postgres/data/postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).expect("the postmaster's pid file");
        let pid: u32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("a pid");
        crate::signal(pid, "QUIT");
        // The next start needs the old server and its backends gone.
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        RestartOnDrop
    }

    /// Empties the cache, as a Redis restarted without persistence would be.
    pub fn flush_redis() {
        let status = std::process::Command::new("redis-cli")
            .args(["-u", &crate::redis_url(), "FLUSHALL"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running redis-cli");
        assert!(status.success(), "redis-cli FLUSHALL failed");
    }

    /// Restarts what died (`scripts/stack up`) when dropped.
    pub struct RestartOnDrop;

    impl Drop for RestartOnDrop {
        fn drop(&mut self) {
            let status = std::process::Command::new(repo().join("scripts/stack"))
                .arg("up")
                .env("STACK_DIR", stack_dir())
                .status()
                .expect("running scripts/stack up");
            assert!(status.success(), "scripts/stack up failed");
        }
    }
}

/// A service binary from `tests/src/bin` started as a process of its own, so
/// a crash test can SIGKILL it; `vars` configure it. Answers the process and
/// its HTTP address (the first line it prints) once `/health/ready` says 200.
/// It logs warnings to the test's stderr, or what `SERVICE_LOG` asks for.
pub async fn spawn_process(
    binary: &str,
    vars: &[(&str, String)],
) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut process = tokio::process::Command::new(binary)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env(
            "RUST_LOG",
            std::env::var("SERVICE_LOG").unwrap_or("warn".into()),
        )
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let stdout = process.stdout.take().expect("piped stdout");
    let addr = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("reading the address")
        .unwrap_or_else(|| panic!("{binary} printed no address"));
    // Every instance migrates the shared database; wait until it has.
    Service::new(addr.parse().expect("an address"))
        .wait_ready()
        .await;
    (process, addr)
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, `QUIT`) to the process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid}");
}
