//! serde_json encode and decode of the real envelope (`Envelope<OrderEvent>`
//! holding an `OrderPlaced`), on one thread.

use std::time::Duration;

use events::Envelope;
use events::domain::OrderEvent;

use crate::fixtures;
use crate::stats::Measured;

pub async fn round_trip(duration: Duration) -> anyhow::Result<Measured> {
    tokio::task::spawn_blocking(move || {
        let envelope = fixtures::order_placed();
        let started = std::time::Instant::now();
        let (mut ops, mut bytes) = (0u64, 0usize);
        while started.elapsed() < duration {
            for _ in 0..1000 {
                let encoded = serde_json::to_vec(&envelope)?;
                let decoded: Envelope<OrderEvent> = serde_json::from_slice(&encoded)?;
                bytes = encoded.len();
                std::hint::black_box(decoded);
            }
            ops += 1000;
        }
        Ok(
            Measured::new(ops, 0, started.elapsed(), None).with_note(format!(
                "{bytes} byte envelope, encode + decode, one thread"
            )),
        )
    })
    .await?
}
