//! One sample of every message variant, used by the wire-format tests.

use uuid::Uuid;

use crate::domain::*;

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

pub fn sku(value: &str) -> Sku {
    Sku::new(value).unwrap()
}

pub fn order_id() -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042))
}

pub fn address() -> Address {
    Address {
        name: "Ada Lovelace".into(),
        line1: "1 Main Street".into(),
        city: "Springfield".into(),
        postal_code: "12345".into(),
        country: "US".into(),
    }
}

fn lines() -> Vec<OrderLine> {
    vec![
        OrderLine {
            sku: sku("SKU-1"),
            quantity: 2,
        },
        OrderLine {
            sku: sku("SKU-2"),
            quantity: 1,
        },
    ]
}

fn priced_lines() -> Vec<PricedLine> {
    vec![PricedLine {
        sku: sku("SKU-1"),
        quantity: 2,
        unit_price: usd(1999),
    }]
}

pub fn catalog_events() -> Vec<CatalogEvent> {
    let order_id = order_id();
    vec![
        CatalogEvent::ItemCreated {
            name: "Widget".into(),
            unit_price: usd(1999),
            initial_stock: 100,
        },
        CatalogEvent::Restocked { quantity: 5 },
        CatalogEvent::PriceChanged {
            unit_price: usd(2499),
        },
        CatalogEvent::StockReserved {
            order_id,
            quantity: 2,
            unit_price: usd(1999),
        },
        CatalogEvent::StockReservationRejected {
            order_id,
            quantity: 2,
            available: 1,
            reason: ReservationRejectedReason::InsufficientStock,
        },
        CatalogEvent::StockReleased {
            order_id,
            quantity: 2,
        },
        CatalogEvent::StockCommitted {
            order_id,
            quantity: 2,
        },
    ]
}

/// Exhaustive, so a new variant fails to compile until it has a sample.
pub fn catalog_event_index(event: &CatalogEvent) -> usize {
    match event {
        CatalogEvent::ItemCreated { .. } => 0,
        CatalogEvent::Restocked { .. } => 1,
        CatalogEvent::PriceChanged { .. } => 2,
        CatalogEvent::StockReserved { .. } => 3,
        CatalogEvent::StockReservationRejected { .. } => 4,
        CatalogEvent::StockReleased { .. } => 5,
        CatalogEvent::StockCommitted { .. } => 6,
    }
}

pub fn order_events() -> Vec<OrderEvent> {
    vec![
        OrderEvent::OrderPlaced {
            customer_id: CustomerId::new("customer-1").unwrap(),
            currency: Currency::new("USD").unwrap(),
            lines: lines(),
            shipping_address: address(),
            payment_token: "tok_ok".into(),
        },
        OrderEvent::OrderPriced {
            lines: priced_lines(),
            total: usd(3998),
        },
        OrderEvent::OrderConfirmed,
        OrderEvent::OrderRejected {
            reason: "insufficient_stock".into(),
        },
        OrderEvent::OrderCancellationRequested {
            reason: "changed my mind".into(),
        },
        OrderEvent::OrderCancelled {
            reason: "cancelled_by_customer".into(),
        },
        OrderEvent::OrderShipped,
        OrderEvent::OrderDelivered,
    ]
}

/// Exhaustive, so a new variant fails to compile until it has a sample.
pub fn order_event_index(event: &OrderEvent) -> usize {
    match event {
        OrderEvent::OrderPlaced { .. } => 0,
        OrderEvent::OrderPriced { .. } => 1,
        OrderEvent::OrderConfirmed => 2,
        OrderEvent::OrderRejected { .. } => 3,
        OrderEvent::OrderCancellationRequested { .. } => 4,
        OrderEvent::OrderCancelled { .. } => 5,
        OrderEvent::OrderShipped => 6,
        OrderEvent::OrderDelivered => 7,
    }
}

pub fn payment_events() -> Vec<PaymentEvent> {
    vec![
        PaymentEvent::PaymentAuthorizationRequested {
            amount: usd(3998),
            token: "tok_ok".into(),
        },
        PaymentEvent::PaymentAuthorized {
            provider_ref: "auth_1".into(),
            amount: usd(3998),
        },
        PaymentEvent::PaymentDeclined {
            reason: "card declined".into(),
        },
        PaymentEvent::PaymentCaptureRequested { amount: usd(3998) },
        PaymentEvent::PaymentCaptured { amount: usd(3998) },
        PaymentEvent::PaymentCaptureFailed {
            reason: "provider unavailable".into(),
        },
        PaymentEvent::PaymentVoidRequested,
        PaymentEvent::PaymentVoided { amount: usd(3998) },
        PaymentEvent::PaymentRefundRequested { amount: usd(3998) },
        PaymentEvent::PaymentRefunded { amount: usd(3998) },
    ]
}

/// Exhaustive, so a new variant fails to compile until it has a sample.
pub fn payment_event_index(event: &PaymentEvent) -> usize {
    match event {
        PaymentEvent::PaymentAuthorizationRequested { .. } => 0,
        PaymentEvent::PaymentAuthorized { .. } => 1,
        PaymentEvent::PaymentDeclined { .. } => 2,
        PaymentEvent::PaymentCaptureRequested { .. } => 3,
        PaymentEvent::PaymentCaptured { .. } => 4,
        PaymentEvent::PaymentCaptureFailed { .. } => 5,
        PaymentEvent::PaymentVoidRequested => 6,
        PaymentEvent::PaymentVoided { .. } => 7,
        PaymentEvent::PaymentRefundRequested { .. } => 8,
        PaymentEvent::PaymentRefunded { .. } => 9,
    }
}

pub fn shipment_events() -> Vec<ShipmentEvent> {
    vec![
        ShipmentEvent::ShipmentRequested { address: address() },
        ShipmentEvent::ShipmentScheduled {
            tracking_ref: "trk_1".into(),
            carrier: Some("carrier-1".into()),
        },
        ShipmentEvent::ShipmentRefused {
            reason: "country not served".into(),
        },
        ShipmentEvent::ShipmentCancelled,
        ShipmentEvent::ShipmentDispatched,
        ShipmentEvent::ShipmentDelivered,
        ShipmentEvent::ShipmentReleased,
    ]
}

/// Exhaustive, so a new variant fails to compile until it has a sample.
pub fn shipment_event_index(event: &ShipmentEvent) -> usize {
    match event {
        ShipmentEvent::ShipmentRequested { .. } => 0,
        ShipmentEvent::ShipmentScheduled { .. } => 1,
        ShipmentEvent::ShipmentRefused { .. } => 2,
        ShipmentEvent::ShipmentCancelled => 3,
        ShipmentEvent::ShipmentDispatched => 4,
        ShipmentEvent::ShipmentDelivered => 5,
        ShipmentEvent::ShipmentReleased => 6,
    }
}

pub fn catalog_commands() -> Vec<CatalogCommand> {
    let order_id = order_id();
    vec![
        CatalogCommand::CreateItem {
            name: "Widget".into(),
            unit_price: usd(1999),
            initial_stock: 10,
        },
        CatalogCommand::Restock { quantity: 5 },
        CatalogCommand::ChangePrice {
            unit_price: usd(2499),
        },
        CatalogCommand::ReserveStock {
            order_id,
            quantity: 2,
        },
        CatalogCommand::ReleaseStock { order_id },
        CatalogCommand::CommitStock { order_id },
    ]
}

pub fn order_commands() -> Vec<OrderCommand> {
    vec![
        OrderCommand::PlaceOrder {
            customer_id: CustomerId::new("customer-1").unwrap(),
            currency: Currency::new("USD").unwrap(),
            lines: lines(),
            shipping_address: address(),
            payment_token: "tok_ok".into(),
        },
        OrderCommand::PriceOrder {
            lines: priced_lines(),
            total: usd(3998),
        },
        OrderCommand::ConfirmOrder,
        OrderCommand::RejectOrder {
            reason: "insufficient_stock".into(),
        },
        OrderCommand::RequestCancellation {
            reason: "changed my mind".into(),
        },
        OrderCommand::CancelOrder {
            reason: "cancelled_by_customer".into(),
        },
        OrderCommand::MarkShipped,
        OrderCommand::MarkDelivered,
    ]
}

pub fn payment_commands() -> Vec<PaymentCommand> {
    vec![
        PaymentCommand::RequestAuthorization {
            amount: usd(3998),
            token: "tok_ok".into(),
        },
        PaymentCommand::RequestCapture,
        PaymentCommand::RequestVoid,
        PaymentCommand::RequestRefund { amount: None },
        PaymentCommand::RequestRefund {
            amount: Some(usd(100)),
        },
        PaymentCommand::RecordAuthorized {
            provider_ref: "auth_1".into(),
        },
        PaymentCommand::RecordDeclined {
            reason: "card declined".into(),
        },
        PaymentCommand::RecordCaptured,
        PaymentCommand::RecordCaptureFailed {
            reason: "timeout".into(),
        },
        PaymentCommand::RecordVoided,
        PaymentCommand::RecordRefunded,
    ]
}

pub fn shipment_commands() -> Vec<ShipmentCommand> {
    vec![
        ShipmentCommand::RequestShipment { address: address() },
        ShipmentCommand::RecordScheduled {
            tracking_ref: "trk_1".into(),
            carrier: Some("carrier-1".into()),
        },
        ShipmentCommand::RecordRefused {
            reason: "country not served".into(),
        },
        ShipmentCommand::Release,
        ShipmentCommand::Cancel,
        ShipmentCommand::Dispatch,
        ShipmentCommand::Deliver,
    ]
}

pub fn catalog_rejections() -> Vec<CatalogRejection> {
    vec![
        CatalogRejection::NotFound,
        CatalogRejection::AlreadyExists,
        CatalogRejection::InvalidName,
        CatalogRejection::InvalidPrice { unit_price: usd(0) },
        CatalogRejection::CurrencyMismatch {
            expected: Currency::new("USD").unwrap(),
            actual: Currency::new("EUR").unwrap(),
        },
        CatalogRejection::InvalidQuantity { quantity: 0 },
        CatalogRejection::StockOverflow { quantity: u32::MAX },
        CatalogRejection::NoReservation {
            order_id: order_id(),
        },
    ]
}

pub fn order_rejections() -> Vec<OrderRejection> {
    let status = OrderStatus::Shipped;
    vec![
        OrderRejection::NotFound,
        OrderRejection::AlreadyPlaced,
        OrderRejection::NoLines,
        OrderRejection::TooManyLines { count: 51 },
        OrderRejection::InvalidQuantity {
            sku: sku("SKU-1"),
            quantity: 0,
        },
        OrderRejection::DuplicateSku { sku: sku("SKU-1") },
        OrderRejection::InvalidAddress {
            field: AddressField::Country,
        },
        OrderRejection::InvalidPaymentToken,
        OrderRejection::InvalidReason,
        OrderRejection::PricingMismatch,
        OrderRejection::CurrencyMismatch {
            expected: Currency::new("USD").unwrap(),
            actual: Currency::new("JPY").unwrap(),
        },
        OrderRejection::InvalidUnitPrice {
            sku: sku("SKU-1"),
            unit_price: usd(0),
        },
        OrderRejection::TotalMismatch {
            expected: usd(2),
            actual: usd(1),
        },
        OrderRejection::TotalOverflow,
        OrderRejection::AlreadyPriced,
        OrderRejection::NotPriced,
        OrderRejection::NotPending { status },
        OrderRejection::NotConfirmed { status },
        OrderRejection::NotShipped { status },
        OrderRejection::AlreadyShipped { status },
        OrderRejection::Closed { status },
    ]
}

pub fn payment_rejections() -> Vec<PaymentRejection> {
    vec![
        PaymentRejection::NotFound,
        PaymentRejection::InvalidAmount { amount: usd(0) },
        PaymentRejection::InvalidToken,
        PaymentRejection::InvalidProviderRef,
        PaymentRejection::InvalidReason,
        PaymentRejection::AlreadyRequested,
        PaymentRejection::AuthorizationPending,
        PaymentRejection::Declined,
        PaymentRejection::AlreadyAuthorized,
        PaymentRejection::ProviderRefMismatch,
        PaymentRejection::NotAuthorized,
        PaymentRejection::VoidPending,
        PaymentRejection::Voided,
        PaymentRejection::AlreadyCaptured,
        PaymentRejection::CapturePending,
        PaymentRejection::CaptureNotRequested,
        PaymentRejection::VoidNotRequested,
        PaymentRejection::NotCaptured,
        PaymentRejection::RefundCurrencyMismatch {
            expected: Currency::new("USD").unwrap(),
            actual: Currency::new("EUR").unwrap(),
        },
        PaymentRejection::RefundExceedsCaptured {
            requested: usd(2),
            captured: usd(1),
        },
        PaymentRejection::RefundAlreadyRequested { amount: usd(1) },
        PaymentRejection::RefundNotRequested,
    ]
}

pub fn shipment_rejections() -> Vec<ShipmentRejection> {
    let status = ShipmentStatus::Dispatched;
    vec![
        ShipmentRejection::NotFound,
        ShipmentRejection::InvalidAddress {
            field: AddressField::Name,
        },
        ShipmentRejection::InvalidTrackingRef,
        ShipmentRejection::InvalidReason,
        ShipmentRejection::AlreadyRequested,
        ShipmentRejection::TrackingRefMismatch,
        ShipmentRejection::AlreadyScheduled { status },
        ShipmentRejection::Refused,
        ShipmentRejection::Cancelled,
        ShipmentRejection::AlreadyDispatched { status },
        ShipmentRejection::NotScheduled { status },
        ShipmentRejection::NotReleased { status },
        ShipmentRejection::NotDispatched { status },
    ]
}
