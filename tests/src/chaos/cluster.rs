//! Two instances of each service as processes of their own, so the nemesis
//! can SIGKILL, SIGSTOP and SIGCONT any of them.

use std::sync::Mutex;

use crate::{TestEnv, spawn_process};

/// The service binaries (integration tests know them as `CARGO_BIN_EXE_*`).
#[derive(Debug, Clone, Copy)]
pub struct Binaries {
    pub command: &'static str,
    pub sagas: &'static str,
    pub projections: &'static str,
    pub query: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Command,
    Projections,
    Query,
    Sagas,
}

/// In start order: the command service creates the topics and the projector
/// the views database the query API reads.
pub const KINDS: [Kind; 4] = [Kind::Command, Kind::Projections, Kind::Query, Kind::Sagas];

struct Member {
    kind: Kind,
    name: String,
    vars: Vec<(&'static str, String)>,
    process: Option<tokio::process::Child>,
    addr: String,
}

pub struct Cluster {
    binaries: Binaries,
    members: Mutex<Vec<Member>>,
}

impl Cluster {
    pub async fn start(env: &TestEnv, binaries: Binaries, pace_ms: u32) -> Cluster {
        let cluster = Cluster {
            binaries,
            members: Mutex::new(Vec::new()),
        };
        for kind in KINDS {
            for instance in ["a", "b"] {
                let vars = vars(env, kind, instance, pace_ms);
                let (process, addr) = spawn_process(cluster.binary(kind), &vars).await;
                cluster.lock().push(Member {
                    kind,
                    name: format!("{kind:?}-{instance}").to_lowercase(),
                    vars,
                    process: Some(process),
                    addr,
                });
            }
        }
        cluster
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Member>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn binary(&self, kind: Kind) -> &'static str {
        match kind {
            Kind::Command => self.binaries.command,
            Kind::Projections => self.binaries.projections,
            Kind::Query => self.binaries.query,
            Kind::Sagas => self.binaries.sagas,
        }
    }

    /// The instances' names.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|m| m.name.clone()).collect()
    }

    /// The HTTP addresses of the instances of `kind`.
    pub fn addrs(&self, kind: Kind) -> Vec<String> {
        let members = self.lock();
        members
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.addr.clone())
            .collect()
    }

    /// SIGKILLs the instance and starts it again; its address changes.
    pub async fn kill_and_restart(&self, name: &str) {
        let (process, binary, vars) = {
            let mut members = self.lock();
            let member = members.iter_mut().find(|m| m.name == name).expect(name);
            (
                member.process.take(),
                self.binary(member.kind),
                member.vars.clone(),
            )
        };
        if let Some(mut process) = process {
            drop(process.start_kill());
            drop(process.wait().await);
        }
        let (process, addr) = spawn_process(binary, &vars).await;
        let mut members = self.lock();
        let member = members.iter_mut().find(|m| m.name == name).expect(name);
        member.process = Some(process);
        member.addr = addr;
    }

    /// Sends `signal` (`STOP`, `CONT`) to the instance.
    pub fn signal(&self, name: &str, signal: &str) {
        let members = self.lock();
        let member = members.iter().find(|m| m.name == name).expect(name);
        if let Some(pid) = member.process.as_ref().and_then(|p| p.id()) {
            crate::signal(pid, signal);
        }
    }

    /// Every instance running and awake.
    pub async fn heal(&self) {
        for name in self.names() {
            self.signal(&name, "CONT");
        }
        let dead: Vec<String> = {
            let mut members = self.lock();
            members
                .iter_mut()
                .filter_map(|m| {
                    let running =
                        matches!(m.process.as_mut().map(|p| p.try_wait()), Some(Ok(None)));
                    (!running).then(|| m.name.clone())
                })
                .collect()
        };
        for name in dead {
            self.kill_and_restart(&name).await;
        }
    }
}

fn vars(env: &TestEnv, kind: Kind, instance: &str, pace_ms: u32) -> Vec<(&'static str, String)> {
    let kafka = [
        ("KAFKA_BROKERS", env.kafka.brokers.clone()),
        ("TOPIC_PREFIX", env.kafka.topic_prefix.clone()),
        ("KAFKA_PARTITIONS", env.kafka.partitions.to_string()),
    ];
    let own: Vec<(&'static str, String)> = match kind {
        Kind::Command => vec![("INSTANCE_ID", format!("chaos-{instance}"))],
        Kind::Projections => vec![
            ("GROUP_ID", format!("t{}-projections", env.id)),
            ("DATABASE_URL", env.views_db_url.clone()),
            ("REDIS_URL", env.redis_url.clone()),
        ],
        Kind::Query => vec![
            ("DATABASE_URL", env.views_db_url.clone()),
            ("REDIS_URL", env.redis_url.clone()),
        ],
        Kind::Sagas => vec![
            ("SAGAS_GROUP_ID", format!("t{}-sagas", env.id)),
            ("SAGAS_DATABASE_URL", env.sagas_db_url.clone()),
            ("SAGAS_PACE_MS", pace_ms.to_string()),
        ],
    };
    kafka.into_iter().chain(own).collect()
}
