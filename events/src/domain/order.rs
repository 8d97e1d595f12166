//! Messages of the Order aggregate, whose id is the [`OrderId`].
//!
//! [`OrderId`]: crate::domain::ids::OrderId
//!
//! Statuses run `pending -> confirmed -> shipped -> delivered`; a pending order
//! can end `rejected`, a confirmed one `cancelled`. Unit prices never come from
//! the client: the saga prices the order from the stock reservations.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::address::{Address, AddressField};
use crate::domain::ids::{CustomerId, Sku};
use crate::domain::money::{Currency, Money, MoneyError};

/// Most lines an order may have.
pub const MAX_ORDER_LINES: usize = 50;

/// Most units of one SKU an order line may ask for.
pub const MAX_LINE_QUANTITY: u32 = 10_000;

/// One line as the customer placed it: what and how many, never a price.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: u32,
}

/// One line with the unit price fixed by its stock reservation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PricedLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
}

impl PricedLine {
    /// `unit_price * quantity`, refusing overflow.
    pub fn line_total(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Rejected,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    /// Rejected and cancelled orders accept no further change.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Rejected | Self::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be asked of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum OrderCommand {
    PlaceOrder {
        customer_id: CustomerId,
        currency: Currency,
        lines: Vec<OrderLine>,
        shipping_address: Address,
        payment_token: String,
    },
    /// Issued by the saga with the unit prices of the stock reservations.
    PriceOrder {
        lines: Vec<PricedLine>,
        total: Money,
    },
    ConfirmOrder,
    RejectOrder {
        reason: String,
    },
    /// The customer's wish to cancel; the saga decides how to compensate.
    RequestCancellation {
        reason: String,
    },
    /// Issued by the saga once a confirmed order has been refunded.
    CancelOrder {
        reason: String,
    },
    MarkShipped,
    MarkDelivered,
}

impl OrderCommand {
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::PlaceOrder { .. } => "PlaceOrder",
            Self::PriceOrder { .. } => "PriceOrder",
            Self::ConfirmOrder => "ConfirmOrder",
            Self::RejectOrder { .. } => "RejectOrder",
            Self::RequestCancellation { .. } => "RequestCancellation",
            Self::CancelOrder { .. } => "CancelOrder",
            Self::MarkShipped => "MarkShipped",
            Self::MarkDelivered => "MarkDelivered",
        }
    }
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum OrderEvent {
    OrderPlaced {
        customer_id: CustomerId,
        currency: Currency,
        lines: Vec<OrderLine>,
        shipping_address: Address,
        payment_token: String,
    },
    /// `lines` are in the order the customer placed them.
    OrderPriced {
        lines: Vec<PricedLine>,
        total: Money,
    },
    OrderConfirmed,
    OrderRejected {
        reason: String,
    },
    /// The status does not change; the request is pending until the saga
    /// rejects or cancels the order, and becomes moot once the order ships.
    OrderCancellationRequested {
        reason: String,
    },
    OrderCancelled {
        reason: String,
    },
    OrderShipped,
    OrderDelivered,
}

impl OrderEvent {
    pub const SCHEMA_VERSION: u16 = 1;

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OrderPlaced { .. } => "OrderPlaced",
            Self::OrderPriced { .. } => "OrderPriced",
            Self::OrderConfirmed => "OrderConfirmed",
            Self::OrderRejected { .. } => "OrderRejected",
            Self::OrderCancellationRequested { .. } => "OrderCancellationRequested",
            Self::OrderCancelled { .. } => "OrderCancelled",
            Self::OrderShipped => "OrderShipped",
            Self::OrderDelivered => "OrderDelivered",
        }
    }
}

/// Why an order command was refused without recording anything.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderRejection {
    #[error("order not found")]
    NotFound,
    #[error("order was already placed with different content")]
    AlreadyPlaced,
    #[error("order has no lines")]
    NoLines,
    #[error("order has {count} lines, at most 50 are allowed")]
    TooManyLines { count: usize },
    #[error("invalid quantity {quantity} for sku {sku}: expected 1 to 10000")]
    InvalidQuantity { sku: Sku, quantity: u32 },
    #[error("sku {sku} appears on more than one order line")]
    DuplicateSku { sku: Sku },
    #[error("invalid shipping address field {field}")]
    InvalidAddress { field: AddressField },
    #[error("invalid payment token: expected 1 to 200 printable characters")]
    InvalidPaymentToken,
    #[error("invalid reason: expected 1 to 500 printable characters")]
    InvalidReason,
    #[error("priced lines do not match the order lines")]
    PricingMismatch,
    #[error("order is in {expected}, got a price in {actual}")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
    #[error("invalid unit price {unit_price} for sku {sku}: must be positive")]
    InvalidUnitPrice { sku: Sku, unit_price: Money },
    #[error("order total {actual} does not equal the sum of its lines {expected}")]
    TotalMismatch { expected: Money, actual: Money },
    #[error("order total overflows")]
    TotalOverflow,
    #[error("order was already priced differently")]
    AlreadyPriced,
    #[error("order is not priced yet")]
    NotPriced,
    #[error("order is {status}, not pending")]
    NotPending { status: OrderStatus },
    #[error("order is {status}, not confirmed")]
    NotConfirmed { status: OrderStatus },
    #[error("order is {status}, not shipped")]
    NotShipped { status: OrderStatus },
    #[error("order is already {status}")]
    AlreadyShipped { status: OrderStatus },
    #[error("order is {status} and accepts no change")]
    Closed { status: OrderStatus },
}

impl OrderRejection {
    /// Stable snake_case code, the suffix of the problem+json `type`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "order_not_found",
            Self::AlreadyPlaced => "order_already_placed",
            Self::NoLines => "order_has_no_lines",
            Self::TooManyLines { .. } => "too_many_order_lines",
            Self::InvalidQuantity { .. } => "invalid_line_quantity",
            Self::DuplicateSku { .. } => "duplicate_sku",
            Self::InvalidAddress { .. } => "invalid_shipping_address",
            Self::InvalidPaymentToken => "invalid_payment_token",
            Self::InvalidReason => "invalid_reason",
            Self::PricingMismatch => "pricing_mismatch",
            Self::CurrencyMismatch { .. } => "order_currency_mismatch",
            Self::InvalidUnitPrice { .. } => "invalid_unit_price",
            Self::TotalMismatch { .. } => "order_total_mismatch",
            Self::TotalOverflow => "order_total_overflow",
            Self::AlreadyPriced => "order_already_priced",
            Self::NotPriced => "order_not_priced",
            Self::NotPending { .. } => "order_not_pending",
            Self::NotConfirmed { .. } => "order_not_confirmed",
            Self::NotShipped { .. } => "order_not_shipped",
            Self::AlreadyShipped { .. } => "order_already_shipped",
            Self::Closed { .. } => "order_closed",
        }
    }

    /// True when the order's state conflicts with the command (HTTP 409);
    /// false when the command itself is invalid (HTTP 422).
    pub fn is_conflict(&self) -> bool {
        // An exhaustive match, so a new variant forces a decision here.
        match self {
            Self::NotFound
            | Self::NoLines
            | Self::TooManyLines { .. }
            | Self::InvalidQuantity { .. }
            | Self::DuplicateSku { .. }
            | Self::InvalidAddress { .. }
            | Self::InvalidPaymentToken
            | Self::InvalidReason
            | Self::PricingMismatch
            | Self::CurrencyMismatch { .. }
            | Self::InvalidUnitPrice { .. }
            | Self::TotalMismatch { .. }
            | Self::TotalOverflow => false,
            Self::AlreadyPlaced
            | Self::AlreadyPriced
            | Self::NotPriced
            | Self::NotPending { .. }
            | Self::NotConfirmed { .. }
            | Self::NotShipped { .. }
            | Self::AlreadyShipped { .. }
            | Self::Closed { .. } => true,
        }
    }

    /// True when the order does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}
