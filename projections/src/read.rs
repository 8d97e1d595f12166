//! The read side of the views, the only part of this crate the query API
//! uses: the rows, cursors and documents it serves, the queries that read
//! them, a pool that never migrates, and the cache's lookups. Nothing here
//! folds, stores or applies, so a reader cannot write the views database
//! through it (the query API is held to this module by `tests/tests/tidy.rs`).
//! Each module below re-exports what readers need from its namesake.

pub use crate::cache::{Cache, CacheError, Cached, namespace_for};
pub use crate::consumer::PROGRESS_CHANNEL;
pub use crate::db::connect_lazy;

/// The cached and PostgreSQL-built documents of an order and a catalog item.
pub mod documents {
    pub use crate::documents::{ItemDocument, OrderDocument, Price, items, orders};
}

/// Order detail and a customer's history, newest first.
pub mod orders {
    pub use crate::views::orders::{HistoryCursor, OrderRow, history, version};
}

/// How far the catalog view has folded an item's stream.
pub mod catalog_items {
    pub use crate::views::catalog_items::version;
}

/// How far the payment status view has folded an order's payment stream.
pub mod order_payments {
    pub use crate::views::order_payments::version;
}

/// How far the shipment status view has folded an order's shipment stream.
pub mod order_shipments {
    pub use crate::views::order_shipments::version;
}

/// Where each order's saga is, one row per order, and the admins' list.
pub mod saga_timelines {
    pub use crate::views::saga_timelines::{SagaCursor, SagaRow, find, page, version};
}

/// Confirmed orders and revenue per bucket.
pub mod sales {
    pub use crate::views::sales::{Bucket, SalesRow, find};
}

/// The records no view could apply, newest first.
pub mod dead_letters {
    pub use crate::dead_letters::{StoredDeadLetter, page};
}

/// The pipeline probes.
pub mod probes {
    pub use crate::probes::{ProbeRow, find};
}
