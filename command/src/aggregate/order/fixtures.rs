//! Shared test data for the Order aggregate tests.

use events::domain::address::Address;
use events::domain::ids::{CustomerId, Sku};
use events::domain::money::{Currency, Money};
use events::domain::order::{OrderCommand, OrderEvent, OrderLine, OrderRejection, PricedLine};

use crate::aggregate::testing::given;

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::new("USD").unwrap())
}

pub fn sku(value: &str) -> Sku {
    Sku::new(value).unwrap()
}

pub fn line(value: &str, quantity: u32) -> OrderLine {
    OrderLine {
        sku: sku(value),
        quantity,
    }
}

pub fn priced_line(value: &str, quantity: u32, unit_price: Money) -> PricedLine {
    PricedLine {
        sku: sku(value),
        quantity,
        unit_price,
    }
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

/// The content of a PlaceOrder; the default has two lines, SKU-1 x2 and
/// SKU-2 x1, in USD, paid with `tok_ok`.
#[derive(Debug, Clone)]
pub struct Placement {
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub shipping_address: Address,
    pub payment_token: String,
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            currency: Currency::new("USD").unwrap(),
            lines: vec![line("SKU-1", 2), line("SKU-2", 1)],
            shipping_address: address(),
            payment_token: "tok_ok".into(),
        }
    }
}

impl Placement {
    pub fn command(self) -> OrderCommand {
        OrderCommand::PlaceOrder {
            customer_id: CustomerId::new("customer-1").unwrap(),
            currency: self.currency,
            lines: self.lines,
            shipping_address: self.shipping_address,
            payment_token: self.payment_token,
        }
    }

    pub fn event(self) -> OrderEvent {
        OrderEvent::OrderPlaced {
            customer_id: CustomerId::new("customer-1").unwrap(),
            currency: self.currency,
            lines: self.lines,
            shipping_address: self.shipping_address,
            payment_token: self.payment_token,
        }
    }
}

pub fn place() -> OrderCommand {
    Placement::default().command()
}

pub fn place_with(lines: Vec<OrderLine>) -> OrderCommand {
    Placement {
        lines,
        ..Placement::default()
    }
    .command()
}

pub fn placed() -> OrderEvent {
    Placement::default().event()
}

/// Prices matching [`placed`]: 2 x 19.99 + 1 x 5.00 = 44.98 USD.
pub fn priced_lines() -> Vec<PricedLine> {
    vec![
        priced_line("SKU-1", 2, usd(1999)),
        priced_line("SKU-2", 1, usd(500)),
    ]
}

pub fn price(lines: Vec<PricedLine>, total: Money) -> OrderCommand {
    OrderCommand::PriceOrder { lines, total }
}

pub fn priced() -> OrderEvent {
    OrderEvent::OrderPriced {
        lines: priced_lines(),
        total: usd(4498),
    }
}

pub fn reason(text: &str) -> String {
    text.to_owned()
}

/// The stages an order can be in, each with the history that leads there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Pending,
    Priced,
    Confirmed,
    Shipped,
    Delivered,
    Rejected,
    Cancelled,
}

pub const ALL_STAGES: [Stage; 7] = [
    Stage::Pending,
    Stage::Priced,
    Stage::Confirmed,
    Stage::Shipped,
    Stage::Delivered,
    Stage::Rejected,
    Stage::Cancelled,
];

pub fn history(stage: Stage) -> Vec<OrderEvent> {
    let rejected = OrderEvent::OrderRejected {
        reason: reason("insufficient_stock"),
    };
    let cancelled = OrderEvent::OrderCancelled {
        reason: reason("cancelled_by_customer"),
    };
    let confirmed = vec![placed(), priced(), OrderEvent::OrderConfirmed];
    let shipped = [confirmed.clone(), vec![OrderEvent::OrderShipped]].concat();
    match stage {
        Stage::Pending => vec![placed()],
        Stage::Priced => vec![placed(), priced()],
        Stage::Confirmed => confirmed,
        Stage::Shipped => shipped,
        Stage::Delivered => [shipped, vec![OrderEvent::OrderDelivered]].concat(),
        Stage::Rejected => vec![placed(), rejected],
        Stage::Cancelled => [confirmed, vec![cancelled]].concat(),
    }
}

/// Runs `command` at `stage` and checks the whole outcome.
#[track_caller]
pub fn expect(
    stage: Stage,
    command: OrderCommand,
    outcome: Result<Vec<OrderEvent>, OrderRejection>,
) {
    let then = given(history(stage)).when(command);
    match outcome {
        Ok(events) => then.then_events(events),
        Err(rejection) => then.then_rejects(rejection),
    };
}
