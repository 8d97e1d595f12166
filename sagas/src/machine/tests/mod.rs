//! Tests of the saga state machine: given/when/then paths (`paths`,
//! `edges`) and a simulated world (`world`, `sandbox`) driven by proptest
//! (`proptests`).

mod edges;
mod paths;
mod proptests;
mod sandbox;
mod world;

use chrono::{DateTime, Duration, TimeZone, Utc};
use events::command::DomainCommand;
use events::domain::{
    Address, CatalogEvent, Currency, CustomerId, Money, OrderEvent, OrderId, OrderLine,
    PaymentEvent, ReservationRejectedReason, ShipmentEvent, Sku,
};
use uuid::Uuid;

use super::{Input, OrderPlacedFacts, Outgoing, Pace, Saga, start};

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

pub fn order_id() -> OrderId {
    OrderId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042))
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// An order of 2 x A and 1 x B to the US, paid with `tok_ok`.
pub fn placed() -> OrderPlacedFacts {
    OrderPlacedFacts {
        order_id: order_id(),
        customer_id: CustomerId::new("customer-1").unwrap(),
        currency: Currency::new("USD").unwrap(),
        lines: vec![line("A", 2), line("B", 1)],
        shipping_address: Address {
            name: "Ada Lovelace".into(),
            line1: "1 Main Street".into(),
            city: "Springfield".into(),
            postal_code: "12345".into(),
            country: "US".into(),
        },
        payment_token: "tok_ok".into(),
    }
}

fn line(sku: &str, quantity: u32) -> OrderLine {
    OrderLine {
        sku: Sku::new(sku).unwrap(),
        quantity,
    }
}

pub fn catalog(sku: &str, event: CatalogEvent) -> Input {
    Input::Catalog {
        sku: Sku::new(sku).unwrap(),
        event,
        sequence: 0,
    }
}

/// `input`, a catalog event, at position `sequence` of its SKU's stream.
pub fn numbered(input: Input, sequence: u64) -> Input {
    match input {
        Input::Catalog { sku, event, .. } => Input::Catalog {
            sku,
            event,
            sequence,
        },
        other => other,
    }
}

pub fn reserved(sku: &str, quantity: u32, price: i64) -> Input {
    let order_id = order_id();
    let unit_price = usd(price);
    catalog(
        sku,
        CatalogEvent::StockReserved {
            order_id,
            quantity,
            unit_price,
        },
    )
}

pub fn rejected(sku: &str, quantity: u32, reason: ReservationRejectedReason) -> Input {
    let event = CatalogEvent::StockReservationRejected {
        order_id: order_id(),
        quantity,
        available: 0,
        reason,
    };
    catalog(sku, event)
}

pub fn released(sku: &str, quantity: u32) -> Input {
    let order_id = order_id();
    catalog(sku, CatalogEvent::StockReleased { order_id, quantity })
}

pub fn committed(sku: &str, quantity: u32) -> Input {
    let order_id = order_id();
    catalog(sku, CatalogEvent::StockCommitted { order_id, quantity })
}

pub fn pay(event: PaymentEvent) -> Input {
    Input::Payment(event)
}

pub fn ship(event: ShipmentEvent) -> Input {
    Input::Shipment(event)
}

pub fn order(event: OrderEvent) -> Input {
    Input::Order(event)
}

pub fn authorized() -> Input {
    pay(PaymentEvent::PaymentAuthorized {
        provider_ref: "auth-1".into(),
        amount: usd(2_500),
    })
}

pub fn scheduled() -> Input {
    ship(ShipmentEvent::ShipmentScheduled {
        tracking_ref: "track-1".into(),
        carrier: None,
    })
}

pub fn priced() -> Input {
    order(OrderEvent::OrderPriced {
        lines: vec![],
        total: usd(2_500),
    })
}

/// What the saga sends once every line is reserved.
pub const AUTHORIZE_AND_SCHEDULE: [&str; 3] = [
    "PriceOrder order",
    "RequestAuthorization payment",
    "RequestShipment shipment",
];

/// What the saga sends once the payment is captured.
pub const COMMIT_AND_CONFIRM: [&str; 4] = [
    "CommitStock A",
    "CommitStock B",
    "ConfirmOrder order",
    "Release shipment",
];

/// Undoing an authorization that may exist and both reservations.
pub const VOID_AND_RELEASE: [&str; 3] = ["RequestVoid payment", "ReleaseStock A", "ReleaseStock B"];

pub fn capture_failed() -> Input {
    pay(PaymentEvent::PaymentCaptureFailed {
        reason: "card_error".into(),
    })
}

pub fn cancellation_requested() -> Input {
    order(OrderEvent::OrderCancellationRequested {
        reason: "changed my mind".into(),
    })
}

/// `"CommandType target"`, where the target is the SKU of a catalog command
/// and the aggregate type otherwise: short enough to list in assertions.
pub fn describe(outgoing: &[Outgoing]) -> Vec<String> {
    outgoing
        .iter()
        .map(|out| {
            let target = match &out.command {
                DomainCommand::CatalogItem(_) => out.aggregate_id.clone(),
                DomainCommand::Order(_) => "order".to_owned(),
                DomainCommand::Payment(_) => "payment".to_owned(),
                DomainCommand::Shipment(_) => "shipment".to_owned(),
                DomainCommand::Saga(_) => "saga".to_owned(),
            };
            format!("{} {target}", out.command.command_type())
        })
        .collect()
}

/// A saga under test with its own clock.
pub struct Script {
    pub saga: Saga,
    pub now: DateTime<Utc>,
    pub first: Vec<String>,
}

impl Script {
    pub fn start() -> Self {
        Self::start_with(placed())
    }

    pub fn start_with(order: OrderPlacedFacts) -> Self {
        let (saga, out) = start(&order, Pace::default(), at(0));
        Self {
            saga,
            now: at(0),
            first: describe(&out),
        }
    }

    /// Delivers `input` one second later and describes the commands.
    pub fn when(&mut self, input: Input) -> Vec<String> {
        self.now += Duration::seconds(1);
        describe(&self.saga.handle(&input, self.now))
    }

    /// Jumps to the saga's deadline and fires it.
    pub fn deadline(&mut self) -> Vec<String> {
        let deadline = self.saga.deadline().expect("the saga waits for a deadline");
        self.now = self.now.max(deadline);
        describe(&self.saga.handle(&Input::DeadlineFired, self.now))
    }

    /// Both lines reserved at 10.00 and 5.00 USD: a total of 25.00 USD.
    pub fn reserve_all(&mut self) -> Vec<String> {
        self.when(reserved("A", 2, 1_000));
        self.when(reserved("B", 1, 500))
    }

    /// Reserves both lines and sees the order priced: the authorization
    /// and the booking are in flight.
    pub fn reserve_and_price(&mut self) {
        assert_eq!(self.reserve_all(), AUTHORIZE_AND_SCHEDULE);
        self.when(priced());
    }

    /// Runs the happy path until the capture was requested.
    pub fn up_to_capture(&mut self) {
        self.reserve_and_price();
        self.when(authorized());
        assert_eq!(self.when(scheduled()), ["RequestCapture payment"]);
    }

    /// Runs the happy path to `completed`.
    pub fn complete(&mut self) {
        self.up_to_capture();
        let captured = pay(PaymentEvent::PaymentCaptured { amount: usd(2_500) });
        assert_eq!(self.when(captured), COMMIT_AND_CONFIRM);
        self.when(committed("A", 2));
        self.when(committed("B", 1));
        self.when(order(OrderEvent::OrderConfirmed));
        self.when(ship(ShipmentEvent::ShipmentReleased));
        assert_eq!(self.saga.status(), super::SagaStatus::Completed);
    }

    /// Confirms the cancellation of the booked shipment, which a rejection
    /// after the reservations undoes first; answers what the saga sends next.
    pub fn shipment_cancelled(&mut self) -> Vec<String> {
        self.when(ship(ShipmentEvent::ShipmentCancelled))
    }

    /// Confirms the release of both lines and the rejection of the order.
    pub fn finish_rejection(&mut self) {
        self.when(released("A", 2));
        let close = self.when(released("B", 1));
        assert_eq!(close, ["RejectOrder order"]);
        self.when(order(OrderEvent::OrderRejected {
            reason: "any".into(),
        }));
        assert_eq!(self.saga.status(), super::SagaStatus::Compensated);
    }
}
