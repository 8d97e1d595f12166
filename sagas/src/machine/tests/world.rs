//! A tiny simulated world for the saga: the four aggregates' reactions to
//! commands (mirroring `command::aggregate`, idempotent no-ops included), the
//! sandbox payment provider and carrier, and a customer.
//!
//! Commands queue per aggregate and events per stream, as on Kafka; the
//! driver in `proptests` decides what happens next. A catalog command can
//! also be held back and processed late, after newer commands of its SKU (a
//! lost hand-off that the outbox relay publishes later), and the catalog may
//! have forgotten the order's commit by then (it remembers only recent ones).

use std::collections::{BTreeMap, VecDeque};

use events::command::DomainCommand;
use events::domain::{
    CatalogCommand as Cat, CatalogEvent as CatE, Money, OrderCommand as Ord, OrderEvent as OrdE,
    ReservationRejectedReason, Sku,
};
use uuid::Uuid;

use super::{Input, Outgoing, order_id, usd};

/// How the sandbox provider answers this order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Ok,
    Decline,
    NoResponse,
    CaptureFail,
    Flaky,
    /// Answers the authorization only once a void was requested.
    Late,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub token: Token,
    pub carrier_refuses: bool,
    pub customer_cancels: bool,
    pub carrier_dispatches: bool,
    /// The catalog still remembers the order's commit when a late
    /// ReserveStock or CommitStock reaches it (inside its horizon).
    pub catalog_remembers: bool,
    /// Catalog items: SKU, stock, unit price (absent SKUs are unknown).
    pub items: Vec<(&'static str, u32, Money)>,
}

#[derive(Debug, Default)]
pub struct Item {
    pub exists: bool,
    pub price: Option<Money>,
    pub on_hand: u32,
    pub initial: u32,
    pub reserved: Option<u32>,
    pub committed: bool,
    /// StockCommitted events of the order: more than one would have sold
    /// the goods twice.
    pub commits: u32,
    pub remembers_commit: bool,
}

#[derive(Debug, Default)]
pub struct Payment {
    pub amount: Option<Money>,
    pub authorized: bool,
    pub declined: bool,
    pub capture_pending: bool,
    pub capture_calls: u32,
    pub captured: bool,
    pub void_pending: bool,
    pub voided: bool,
    pub refund_pending: bool,
    pub refunded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipStatus {
    Requested,
    Scheduled,
    Released,
    Refused,
    Cancelled,
    Dispatched,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderStatus {
    #[default]
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
}

#[derive(Debug, Default)]
pub struct Order {
    pub status: OrderStatus,
    pub priced: bool,
    pub cancel_requested: bool,
}

pub struct World {
    pub scenario: Scenario,
    pub items: BTreeMap<String, Item>,
    pub payment: Payment,
    pub shipment: Option<ShipStatus>,
    pub order: Order,
    pub commands: BTreeMap<String, VecDeque<Outgoing>>,
    pub streams: BTreeMap<String, VecDeque<Input>>,
    /// Catalog commands held back, with their SKU.
    pub late: VecDeque<(String, Outgoing)>,
    /// The last event sequence of each SKU's stream.
    sequences: BTreeMap<String, u64>,
    pub delivered: Vec<Input>,
    /// Every command id the saga emitted, with the command it named.
    pub emitted: BTreeMap<Uuid, DomainCommand>,
    processed: BTreeMap<Uuid, ()>,
}

impl World {
    pub fn new(scenario: Scenario) -> Self {
        let items = scenario
            .items
            .iter()
            .map(|(sku, stock, price)| {
                let item = Item {
                    exists: true,
                    price: Some(*price),
                    on_hand: *stock,
                    initial: *stock,
                    remembers_commit: scenario.catalog_remembers,
                    ..Item::default()
                };
                ((*sku).to_owned(), item)
            })
            .collect();
        Self {
            scenario,
            items,
            payment: Payment::default(),
            shipment: None,
            order: Order::default(),
            commands: BTreeMap::new(),
            streams: BTreeMap::new(),
            late: VecDeque::new(),
            sequences: BTreeMap::new(),
            delivered: vec![],
            emitted: BTreeMap::new(),
            processed: BTreeMap::new(),
        }
    }

    /// Queues the saga's commands; panics if an id ever names two commands.
    pub fn send(&mut self, outgoing: Vec<Outgoing>) {
        for out in outgoing {
            if let Some(known) = self.emitted.insert(out.command_id, out.command.clone()) {
                assert_eq!(known, out.command, "command id reused for other content");
            }
            let queue = self.commands.entry(out.aggregate_id.clone()).or_default();
            queue.push_back(out);
        }
    }

    pub(super) fn emit(&mut self, stream: &str, input: Input) {
        self.streams
            .entry(stream.to_owned())
            .or_default()
            .push_back(input);
    }

    fn emit_catalog(&mut self, sku: &str, event: CatE) {
        let sku_id = Sku::new(sku).expect("test skus are valid");
        let sequence = self.sequences.entry(sku.to_owned()).or_default();
        *sequence += 1;
        let input = Input::Catalog {
            sku: sku_id,
            event,
            sequence: *sequence,
        };
        self.emit(&format!("catalog:{sku}"), input);
    }

    /// Processes the oldest command for `aggregate`, deduplicating by id.
    pub fn process(&mut self, aggregate: &str) {
        let Some(out) = self
            .commands
            .get_mut(aggregate)
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        self.apply(aggregate, out);
    }

    /// The catalogs whose next command may be held back.
    pub fn delayable(&self) -> Vec<String> {
        let next = self.commands.iter().filter_map(|(aggregate, queue)| {
            let command = &queue.front()?.command;
            let catalog = matches!(command, DomainCommand::CatalogItem(_));
            catalog.then(|| aggregate.clone())
        });
        next.collect()
    }

    /// Holds back the next command of `aggregate`, to be processed late.
    pub fn delay(&mut self, aggregate: &str) {
        let queue = self.commands.get_mut(aggregate);
        if let Some(out) = queue.and_then(VecDeque::pop_front) {
            self.late.push_back((aggregate.to_owned(), out));
        }
    }

    /// Processes the oldest command held back.
    pub fn process_late(&mut self) {
        if let Some((aggregate, out)) = self.late.pop_front() {
            self.apply(&aggregate, out);
        }
    }

    fn apply(&mut self, aggregate: &str, out: Outgoing) {
        if self.processed.insert(out.command_id, ()).is_some() {
            return;
        }
        match out.command {
            DomainCommand::CatalogItem(command) => self.catalog(aggregate, command),
            DomainCommand::Order(command) => self.order_command(command),
            DomainCommand::Payment(command) => self.payment_command(command),
            DomainCommand::Shipment(command) => self.shipment_command(command),
            DomainCommand::Saga(command) => panic!("the saga sent itself {command:?}"),
        }
    }

    fn catalog(&mut self, sku: &str, command: Cat) {
        let order_id = order_id();
        let item = self.items.entry(sku.to_owned()).or_default();
        let event = match command {
            Cat::ReserveStock { quantity, .. } => match reserve(item, quantity) {
                Some(event) => event,
                None => return,
            },
            Cat::ReleaseStock { .. } => match item.reserved.take() {
                Some(quantity) => CatE::StockReleased { order_id, quantity },
                None => return,
            },
            Cat::CommitStock { .. } if item.committed && item.remembers_commit => return,
            Cat::CommitStock { .. } => match item.reserved.take() {
                Some(quantity) => {
                    item.committed = true;
                    item.commits += 1;
                    item.on_hand -= quantity;
                    CatE::StockCommitted { order_id, quantity }
                }
                None => return,
            },
            Cat::Restock { quantity } => {
                item.on_hand += quantity;
                CatE::Restocked { quantity }
            }
            Cat::CreateItem { .. } | Cat::ChangePrice { .. } => return,
        };
        self.emit_catalog(sku, event);
    }

    fn order_command(&mut self, command: Ord) {
        let order = &mut self.order;
        let event = match (command, order.status) {
            (Ord::PriceOrder { lines, total }, OrderStatus::Pending) if !order.priced => {
                order.priced = true;
                OrdE::OrderPriced { lines, total }
            }
            (Ord::ConfirmOrder, OrderStatus::Pending) if order.priced => {
                order.status = OrderStatus::Confirmed;
                OrdE::OrderConfirmed
            }
            (Ord::RejectOrder { reason }, OrderStatus::Pending) => {
                order.status = OrderStatus::Rejected;
                OrdE::OrderRejected { reason }
            }
            (Ord::CancelOrder { reason }, OrderStatus::Confirmed) => {
                order.status = OrderStatus::Cancelled;
                OrdE::OrderCancelled { reason }
            }
            _ => return,
        };
        self.emit("order", Input::Order(event));
    }

    /// The customer asks to cancel; refused once the parcel left.
    pub fn customer_cancel(&mut self) {
        let open = matches!(
            self.order.status,
            OrderStatus::Pending | OrderStatus::Confirmed
        );
        let shipped = self.shipment == Some(ShipStatus::Dispatched);
        if open && !shipped && !self.order.cancel_requested {
            self.order.cancel_requested = true;
            let reason = "changed my mind".to_owned();
            let event = OrdE::OrderCancellationRequested { reason };
            self.emit("order", Input::Order(event));
        }
    }

    /// Takes the next event of `stream` for delivery.
    pub fn next_event(&mut self, stream: &str) -> Option<Input> {
        let input = self.streams.get_mut(stream)?.pop_front()?;
        self.delivered.push(input.clone());
        Some(input)
    }

    pub fn busy_commands(&self) -> Vec<String> {
        let busy = self.commands.iter().filter(|(_, q)| !q.is_empty());
        busy.map(|(k, _)| k.clone()).collect()
    }

    pub fn busy_streams(&self) -> Vec<String> {
        let busy = self.streams.iter().filter(|(_, q)| !q.is_empty());
        busy.map(|(k, _)| k.clone()).collect()
    }
}

/// ReserveStock as `CatalogItem::reserve` decides it; `None` when already held.
fn reserve(item: &mut Item, quantity: u32) -> Option<CatE> {
    let order_id = order_id();
    let rejected = |reason, available| CatE::StockReservationRejected {
        order_id,
        quantity,
        available,
        reason,
    };
    if !item.exists {
        return Some(rejected(ReservationRejectedReason::UnknownSku, 0));
    }
    if item.reserved.is_some() || (item.committed && item.remembers_commit) {
        return None;
    }
    if quantity > item.on_hand {
        let reason = ReservationRejectedReason::InsufficientStock;
        return Some(rejected(reason, item.on_hand));
    }
    item.reserved = Some(quantity);
    let unit_price = item.price.unwrap_or(usd(1));
    Some(CatE::StockReserved {
        order_id,
        quantity,
        unit_price,
    })
}
