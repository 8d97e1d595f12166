//! Read-your-writes: the `X-Consistency-Token` a command answer carries, and
//! the bounded wait until the views have caught up with it.
//!
//! The token's format is [`events::consistency`]'s; this module decides
//! which views follow which stream and waits for them.

use std::time::Duration;

use events::AggregateType;
use events::auth::signing::SigningKey;
use events::consistency::ConsistencyToken;
use projections::read::{catalog_items, order_payments, order_shipments, orders, saga_timelines};
use sqlx::PgPool;
use uuid::Uuid;

/// The header a read may carry.
pub const HEADER: &str = "x-consistency-token";

/// How long the first poll of the view waits; each later one waits twice
/// as long, up to [`POLL_AT_MOST`]: a projector that keeps up usually gets
/// there within a few milliseconds, so the first polls are quick.
const POLL_FIRST: Duration = Duration::from_millis(1);
const POLL_AT_MOST: Duration = Duration::from_millis(10);

/// The token is malformed or names a stream no view here follows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid consistency token")]
pub struct InvalidToken;

/// How a wait ended badly.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("the views have not reached the requested version yet")]
    Stale,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Verifies a token's signature and checks that a view here follows its stream.
pub fn parse(token: &str, key: &SigningKey) -> Result<ConsistencyToken, InvalidToken> {
    let parsed = ConsistencyToken::verify(token, key).map_err(|_| InvalidToken)?;
    let followed = matches!(
        parsed.aggregate,
        AggregateType::CatalogItem
            | AggregateType::Order
            | AggregateType::Payment
            | AggregateType::Shipment
            | AggregateType::Saga
    );
    // Order-keyed streams have UUID ids; checking now turns a bad id into a 400.
    let id_ok =
        parsed.aggregate == AggregateType::CatalogItem || Uuid::parse_str(&parsed.id).is_ok();
    if followed && id_ok {
        Ok(parsed)
    } else {
        Err(InvalidToken)
    }
}

/// Waits until the view of the token's aggregate has reached its version,
/// polling PostgreSQL, for at most `limit`.
pub async fn wait(
    token: &ConsistencyToken,
    pool: &PgPool,
    limit: Duration,
) -> Result<(), WaitError> {
    let deadline = tokio::time::Instant::now() + limit;
    let wanted = i64::try_from(token.version).unwrap_or(i64::MAX);
    let mut pause = POLL_FIRST;
    loop {
        if current_version(token, pool).await? >= wanted {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(WaitError::Stale);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_AT_MOST);
    }
}

async fn current_version(token: &ConsistencyToken, pool: &PgPool) -> Result<i64, sqlx::Error> {
    let order_id = || Uuid::parse_str(&token.id).unwrap_or_default();
    match token.aggregate {
        AggregateType::CatalogItem => catalog_items::version(pool, &token.id).await,
        AggregateType::Order => orders::version(pool, order_id()).await,
        AggregateType::Payment => order_payments::version(pool, order_id()).await,
        AggregateType::Shipment => order_shipments::version(pool, order_id()).await,
        AggregateType::Saga => saga_timelines::version(pool, order_id()).await,
        // `parse` refuses the others.
        AggregateType::Probe => Ok(i64::MAX),
    }
}

/// What a token may name on a route: a read waits only for the resource it
/// reads, so a token issued for one order cannot hold a read of another.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// A catalog item: a `catalog` token for that SKU.
    Item(&'a str),
    /// One order (its document or saga): a token of any order-keyed stream
    /// for that order.
    Order(Uuid),
    /// A customer's order history: an `orders` token.
    History,
    /// An operator's list: any token.
    Any,
}

impl Resource<'_> {
    pub fn admits(&self, token: &ConsistencyToken) -> bool {
        match self {
            Resource::Item(sku) => {
                token.aggregate == AggregateType::CatalogItem && token.id == *sku
            }
            Resource::Order(id) => {
                token.aggregate != AggregateType::CatalogItem && token.id == id.to_string()
            }
            Resource::History => token.aggregate == AggregateType::Order,
            Resource::Any => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use events::consistency::consistency_token;

    use super::*;

    const ORDER: &str = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

    fn key() -> SigningKey {
        SigningKey::from_secret(b"a-signing-secret-of-32-bytes-yes").unwrap()
    }

    #[test]
    fn signed_tokens_of_followed_streams_parse() {
        let text = consistency_token(AggregateType::Order, ORDER, 3, &key());
        let parsed = parse(&text, &key()).unwrap();
        assert_eq!(
            (parsed.aggregate, parsed.version),
            (AggregateType::Order, 3)
        );
        let text = consistency_token(AggregateType::CatalogItem, "SKU-1.a/b", 12, &key());
        assert_eq!(parse(&text, &key()).unwrap().id, "SKU-1.a/b");
    }

    #[test]
    fn unsigned_malformed_and_unfollowed_tokens_are_refused() {
        for token in [
            String::new(),
            format!("v1.orders.3.{ORDER}"),
            consistency_token(AggregateType::Order, "not-a-uuid", 3, &key()),
            consistency_token(AggregateType::Probe, ORDER, 3, &key()),
            consistency_token(AggregateType::Order, ORDER, 3, &SigningKey::development()),
        ] {
            assert_eq!(parse(&token, &key()), Err(InvalidToken), "{token:?}");
        }
    }

    #[test]
    fn a_token_admits_only_its_own_resource() {
        let order: Uuid = ORDER.parse().unwrap();
        let token = |aggregate, id: &str| ConsistencyToken {
            aggregate,
            id: id.to_owned(),
            version: 1,
        };
        assert!(Resource::Order(order).admits(&token(AggregateType::Payment, ORDER)));
        assert!(!Resource::Order(Uuid::nil()).admits(&token(AggregateType::Order, ORDER)));
        assert!(!Resource::Order(order).admits(&token(AggregateType::CatalogItem, ORDER)));
        assert!(Resource::Item("A").admits(&token(AggregateType::CatalogItem, "A")));
        assert!(!Resource::Item("B").admits(&token(AggregateType::CatalogItem, "A")));
        assert!(!Resource::History.admits(&token(AggregateType::Saga, ORDER)));
    }
}
