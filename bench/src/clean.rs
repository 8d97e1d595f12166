//! Removes what earlier runs left on the shared stack: topics under the
//! benchmark's prefix, its databases, and its cache keys. Only names the
//! benchmark owns are touched.

use clap::Args;
use sqlx::migrate::MigrateDatabase;

#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    pub kafka_brokers: String,
    /// Every topic whose name starts with this is deleted.
    #[arg(long, default_value = "bench.")]
    pub topic_prefix: String,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:15432")]
    pub postgres_url: String,
    /// Databases to drop (repeatable).
    #[arg(long = "database")]
    pub databases: Vec<String>,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:16379")]
    pub redis_url: String,
}

pub async fn clean(args: &CleanArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.topic_prefix.len() >= 3,
        "refusing to delete topics under the short prefix {:?}",
        args.topic_prefix
    );
    let kafka = events::kafka::KafkaConfig {
        topic_prefix: args.topic_prefix.clone(),
        ..events::kafka::KafkaConfig::new(args.kafka_brokers.as_str())
    };
    let topics = kafka.delete_prefixed_topics().await?;
    for name in &args.databases {
        let url = format!("{}/{name}", args.postgres_url);
        if sqlx::Postgres::database_exists(&url).await? {
            sqlx::Postgres::force_drop_database(&url).await?;
        }
    }
    let keys = delete_keys(&args.redis_url, &args.databases).await?;
    eprintln!(
        "bench: cleaned {topics} topics, {} databases, {keys} cache keys",
        args.databases.len()
    );
    Ok(())
}

/// Deletes the cache keys of the views databases named `databases` (the
/// projector's namespace is the database name followed by a colon).
async fn delete_keys(url: &str, databases: &[String]) -> anyhow::Result<usize> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut deleted = 0;
    for name in databases {
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{name}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for chunk in keys.chunks(1000) {
            let n: usize = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
            deleted += n;
        }
    }
    Ok(deleted)
}
