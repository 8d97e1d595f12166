//! Redis GET of order-document-sized values over one multiplexed connection,
//! the way the query API reads its cache.

use std::time::Duration;

use redis::AsyncCommands;

use crate::fixtures;
use crate::load;
use crate::stats::Measured;

const KEYS: u64 = 10_000;
const PREFIX: &str = "bench_baseline:doc:";

pub async fn get(url: &str, concurrency: usize, duration: Duration) -> anyhow::Result<Measured> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let document = fixtures::order_document();
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.set(format!("{PREFIX}{i}"), &document).ignore();
    }
    let () = pipe.query_async(&mut conn).await?;
    let reader = conn.clone();
    let measured = load::closed_loop(concurrency, duration / 5, duration, &[], move |i| {
        let mut conn = reader.clone();
        async move {
            let value: redis::RedisResult<Option<Vec<u8>>> =
                conn.get(format!("{PREFIX}{}", i % KEYS)).await;
            matches!(value, Ok(Some(_)))
        }
    })
    .await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("{PREFIX}{i}")).collect();
    let _: () = conn.del(keys).await?;
    Ok(measured.with_note(format!("{} byte values", document.len())))
}
