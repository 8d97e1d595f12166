//! Messages of the CatalogItem aggregate, whose id is the [`Sku`].
//!
//! A catalog item owns its stock: units on hand and a reservation per order.
//! The unit price is fixed into each reservation, and the order is priced from
//! the reservations, so a price change never alters an order in flight.
//!
//! [`Sku`]: crate::domain::ids::Sku

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::ids::OrderId;
use crate::domain::money::{Currency, Money};

/// Longest item name accepted, in characters.
pub const MAX_ITEM_NAME_CHARS: usize = 200;

/// Highest unit price accepted, in minor units (a billion US dollars, a
/// hundred billion won). With at most `MAX_ORDER_LINES` lines of at most
/// `MAX_LINE_QUANTITY` units, an order's total stays below 5 * 10^16, far
/// from `i64` overflow (9.2 * 10^18); sums over many orders (the sales view)
/// still check their arithmetic.
pub const MAX_UNIT_PRICE_MINOR: i64 = 100_000_000_000;

/// What can be asked of a catalog item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum CatalogCommand {
    CreateItem {
        name: String,
        unit_price: Money,
        initial_stock: u32,
    },
    Restock {
        quantity: u32,
    },
    ChangePrice {
        unit_price: Money,
    },
    ReserveStock {
        order_id: OrderId,
        quantity: u32,
    },
    ReleaseStock {
        order_id: OrderId,
    },
    CommitStock {
        order_id: OrderId,
    },
}

impl CatalogCommand {
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::CreateItem { .. } => "CreateItem",
            Self::Restock { .. } => "Restock",
            Self::ChangePrice { .. } => "ChangePrice",
            Self::ReserveStock { .. } => "ReserveStock",
            Self::ReleaseStock { .. } => "ReleaseStock",
            Self::CommitStock { .. } => "CommitStock",
        }
    }
}

/// Why a reservation could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationRejectedReason {
    /// No item was ever created under this SKU.
    UnknownSku,
    /// Fewer units are available than the order asks for.
    InsufficientStock,
}

impl ReservationRejectedReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UnknownSku => "unknown_sku",
            Self::InsufficientStock => "insufficient_stock",
        }
    }
}

impl fmt::Display for ReservationRejectedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a catalog item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum CatalogEvent {
    ItemCreated {
        name: String,
        unit_price: Money,
        initial_stock: u32,
    },
    Restocked {
        quantity: u32,
    },
    PriceChanged {
        unit_price: Money,
    },
    /// `unit_price` is the price at reservation time; the order is priced from it.
    StockReserved {
        order_id: OrderId,
        quantity: u32,
        unit_price: Money,
    },
    /// Recorded as an event, not only answered as a rejection, because the
    /// fulfilment saga learns outcomes from the event topics. For an unknown SKU
    /// this is the first event of the stream and the item still does not exist.
    StockReservationRejected {
        order_id: OrderId,
        quantity: u32,
        available: u32,
        reason: ReservationRejectedReason,
    },
    StockReleased {
        order_id: OrderId,
        quantity: u32,
    },
    /// The reserved units left the warehouse's stock: on hand drops by
    /// `quantity` and the reservation is gone.
    StockCommitted {
        order_id: OrderId,
        quantity: u32,
    },
}

impl CatalogEvent {
    pub const SCHEMA_VERSION: u16 = 1;

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ItemCreated { .. } => "ItemCreated",
            Self::Restocked { .. } => "Restocked",
            Self::PriceChanged { .. } => "PriceChanged",
            Self::StockReserved { .. } => "StockReserved",
            Self::StockReservationRejected { .. } => "StockReservationRejected",
            Self::StockReleased { .. } => "StockReleased",
            Self::StockCommitted { .. } => "StockCommitted",
        }
    }
}

/// Why a catalog command was refused without recording anything.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CatalogRejection {
    #[error("catalog item not found")]
    NotFound,
    #[error("catalog item already exists")]
    AlreadyExists,
    #[error("invalid item name: expected 1 to 200 printable characters")]
    InvalidName,
    #[error(
        "invalid unit price {unit_price}: must be positive and at most {MAX_UNIT_PRICE_MINOR} minor units"
    )]
    InvalidPrice { unit_price: Money },
    #[error("item is priced in {expected}, a price in {actual} cannot replace it")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
    #[error("invalid stock quantity {quantity}: must be positive")]
    InvalidQuantity { quantity: u32 },
    #[error("restocking {quantity} units would overflow the stock on hand")]
    StockOverflow { quantity: u32 },
    #[error("no stock reservation for order {order_id}")]
    NoReservation { order_id: OrderId },
}

impl CatalogRejection {
    /// Stable snake_case code, the suffix of the problem+json `type`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "item_not_found",
            Self::AlreadyExists => "item_already_exists",
            Self::InvalidName => "invalid_item_name",
            Self::InvalidPrice { .. } => "invalid_unit_price",
            Self::CurrencyMismatch { .. } => "item_currency_mismatch",
            Self::InvalidQuantity { .. } => "invalid_stock_quantity",
            Self::StockOverflow { .. } => "stock_overflow",
            Self::NoReservation { .. } => "no_stock_reservation",
        }
    }

    /// True when the item's state conflicts with the command (HTTP 409); false
    /// when the command itself is invalid (HTTP 422).
    pub fn is_conflict(&self) -> bool {
        // An exhaustive match, so a new variant forces a decision here.
        match self {
            Self::NotFound
            | Self::InvalidName
            | Self::InvalidPrice { .. }
            | Self::CurrencyMismatch { .. }
            | Self::InvalidQuantity { .. }
            | Self::StockOverflow { .. } => false,
            Self::AlreadyExists | Self::NoReservation { .. } => true,
        }
    }

    /// True when the item does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}
