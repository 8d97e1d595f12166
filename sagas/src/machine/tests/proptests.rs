//! Property: whatever the sandbox does and however events are interleaved,
//! duplicated or overtaken by deadlines, and however late a catalog command
//! reaches the catalog, the saga ends in a terminal state that matches the
//! world, with nothing left reserved and nothing committed twice, and never
//! reuses a command id for other content.

use chrono::Duration;
use events::command::DomainCommand;
use events::domain::{
    CatalogEvent, Currency, Money, PaymentCommand, ShipmentCommand, ShipmentEvent,
};
use proptest::prelude::*;

use super::world::{OrderStatus, Scenario, ShipStatus, Token, World};
use super::{Input, at, placed, usd};
use crate::machine::{Pace, Saga, SagaStatus, start};

/// Enough for the longest path (four captures, a full compensation and an
/// operator-free retry of every stage) many times over.
const MAX_STEPS: usize = 5_000;

struct Driver {
    world: World,
    saga: Saga,
    now: chrono::DateTime<chrono::Utc>,
    cancelled: bool,
    dispatched: bool,
    premature_deadlines: u32,
    operator_retries: u32,
}

impl Driver {
    fn new(scenario: Scenario) -> Self {
        let mut world = World::new(scenario);
        let (saga, out) = start(&placed(), Pace::default(), at(0));
        world.send(out);
        Self {
            world,
            saga,
            now: at(0),
            cancelled: false,
            dispatched: false,
            premature_deadlines: 0,
            operator_retries: 0,
        }
    }

    fn feed(&mut self, input: &Input) {
        self.now += Duration::seconds(1);
        self.handle(input);
    }

    /// Hands `input` to the saga as the worker would: the transition is
    /// deterministic (a re-run yields the same commands and state) and the
    /// state survives being stored as JSON.
    fn handle(&mut self, input: &Input) {
        let mut rerun = self.saga.clone();
        let out = self.saga.handle(input, self.now);
        assert_eq!(rerun.handle(input, self.now), out, "a re-run differs");
        assert_eq!(rerun, self.saga);
        let stored = serde_json::to_string(&self.saga).expect("saga serializes");
        self.saga = serde_json::from_str(&stored).expect("saga deserializes");
        assert_eq!(rerun, self.saga, "the stored saga differs");
        let captures = out.iter().filter(|o| is_capture(&o.command));
        if captures.count() > 0 {
            self.check_pivot();
        }
        if out.iter().any(|o| is_release(&o.command)) {
            assert!(self.world.payment.captured, "release before the capture");
        }
        self.world.send(out);
    }

    /// The pivot rule: the saga asks for a capture only after it saw every
    /// line reserved and the shipment scheduled.
    fn check_pivot(&self) {
        let delivered = &self.world.delivered;
        let scheduled = delivered.iter().any(|input| {
            matches!(
                input,
                Input::Shipment(ShipmentEvent::ShipmentScheduled { .. })
            )
        });
        assert!(scheduled, "capture before the shipment was scheduled");
        for line in &placed().lines {
            let reserved = delivered.iter().any(|input| {
                matches!(input, Input::Catalog { sku, event: CatalogEvent::StockReserved { .. }, .. }
                    if *sku == line.sku)
            });
            assert!(reserved, "capture before {} was reserved", line.sku);
        }
    }

    /// Everything the world can do now, other than firing a deadline.
    fn actions(&self) -> Vec<Action> {
        let world = &self.world;
        let mut actions: Vec<Action> = world
            .busy_commands()
            .into_iter()
            .map(Action::Process)
            .collect();
        actions.extend(world.busy_streams().into_iter().map(Action::Deliver));
        if world.provider_can_act() {
            actions.push(Action::Provider);
        }
        if world.carrier_can_act() {
            actions.push(Action::Carrier);
        }
        actions
    }

    /// One step chosen by `choice`; false once nothing is left to happen.
    fn step(&mut self, choice: Option<u32>) -> bool {
        let mut actions = self.actions();
        if let Some(choice) = choice {
            // The customer and the warehouse act rarely, so that they meet
            // the saga at every step, including after it completed.
            let rare = (choice >> 20) % 8 == 0;
            if rare && self.world.scenario.customer_cancels && !self.cancelled {
                actions.push(Action::Cancel);
            }
            if rare && self.world.can_dispatch() && !self.dispatched {
                actions.push(Action::Dispatch);
            }
            if !self.world.delivered.is_empty() {
                actions.push(Action::Duplicate(choice as usize));
            }
            // A held-back command comes late: after whatever the saga did
            // meanwhile, a ReserveStock often after its retry was committed
            // or released.
            if rare {
                let delayable = self.world.delayable().into_iter();
                actions.extend(delayable.map(Action::Delay));
                if !self.world.late.is_empty() {
                    actions.push(Action::ProcessLate);
                }
            }
            match choice % 40 {
                0 if self.saga.deadline().is_some() => {
                    self.premature_deadlines += 1;
                    return self.fire_deadline();
                }
                1 => actions.push(Action::StaleDeadline),
                _ => {}
            }
            let pick = (choice / 40) as usize % actions.len().max(1);
            if let Some(action) = actions.get(pick).cloned() {
                self.run(action);
                return true;
            }
        }
        // Out of random choices: drain everything in a fixed order.
        if let Some(action) = actions.first().cloned() {
            self.run(action);
            true
        } else if self.world.scenario.customer_cancels && !self.cancelled {
            self.run(Action::Cancel);
            true
        } else if self.world.can_dispatch() && !self.dispatched {
            self.run(Action::Dispatch);
            true
        } else if self.fire_deadline() {
            true
        } else if !self.world.late.is_empty() {
            self.run(Action::ProcessLate);
            true
        } else {
            self.operator_retry()
        }
    }

    /// An operator retries a parked saga once the world has gone quiet.
    fn operator_retry(&mut self) -> bool {
        if self.saga.status() != SagaStatus::NeedsAttention || self.operator_retries >= 3 {
            return false;
        }
        self.operator_retries += 1;
        self.feed(&Input::OperatorRetry);
        true
    }

    fn fire_deadline(&mut self) -> bool {
        let Some(deadline) = self.saga.deadline() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.handle(&Input::DeadlineFired);
        true
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Process(aggregate) => self.world.process(&aggregate),
            Action::Delay(aggregate) => self.world.delay(&aggregate),
            Action::ProcessLate => self.world.process_late(),
            Action::Deliver(stream) => {
                if let Some(input) = self.world.next_event(&stream) {
                    self.feed(&input);
                }
            }
            Action::Duplicate(index) => {
                let delivered = &self.world.delivered;
                let input = delivered[index % delivered.len()].clone();
                self.feed(&input);
            }
            Action::Provider => self.world.provider_act(),
            Action::Carrier => self.world.carrier_act(),
            Action::Cancel => {
                self.cancelled = true;
                self.world.customer_cancel();
            }
            Action::Dispatch => {
                self.dispatched = true;
                self.world.dispatch();
            }
            Action::StaleDeadline => self.feed(&Input::DeadlineFired),
        }
    }
}

fn is_release(command: &DomainCommand) -> bool {
    matches!(command, DomainCommand::Shipment(ShipmentCommand::Release))
}

fn is_capture(command: &DomainCommand) -> bool {
    matches!(
        command,
        DomainCommand::Payment(PaymentCommand::RequestCapture)
    )
}

#[derive(Debug, Clone)]
enum Action {
    Process(String),
    /// Hold the catalog's next command back for later.
    Delay(String),
    ProcessLate,
    Deliver(String),
    Duplicate(usize),
    Provider,
    Carrier,
    Cancel,
    Dispatch,
    StaleDeadline,
}

struct Flags {
    refuse: bool,
    cancel: bool,
    dispatch: bool,
    remembers: bool,
}

fn scenario(token: u8, stock: u8, flags: Flags) -> Scenario {
    let token = match token {
        0 => Token::Ok,
        1 => Token::Decline,
        2 => Token::NoResponse,
        3 => Token::CaptureFail,
        4 => Token::Flaky,
        _ => Token::Late,
    };
    let eur = Money::new(500, Currency::new("EUR").unwrap());
    let items = match stock {
        0..=4 => vec![("A", 5, usd(1_000)), ("B", 3, usd(500))],
        5 => vec![("A", 5, usd(1_000)), ("B", 0, usd(500))],
        6 => vec![("A", 5, usd(1_000))],
        _ => vec![("A", 5, usd(1_000)), ("B", 3, eur)],
    };
    Scenario {
        token,
        carrier_refuses: flags.refuse,
        customer_cancels: flags.cancel,
        carrier_dispatches: flags.dispatch,
        catalog_remembers: flags.remembers,
        items,
    }
}

fn check_outcome(driver: &Driver) {
    let (saga, world) = (&driver.saga, &driver.world);
    let p = &world.payment;
    // Ledger rules: captured <= authorized, refunded <= captured.
    assert!(
        !p.captured || p.authorized,
        "captured without authorization"
    );
    assert!(!p.refunded || p.captured, "refunded without capture");
    for (sku, item) in &world.items {
        assert_eq!(item.reserved, None, "reservation left on {sku}");
        assert!(item.commits <= 1, "{sku} committed {} times", item.commits);
    }
    match saga.status() {
        SagaStatus::Completed => {
            assert!(p.captured && !p.refunded, "{p:?}");
            assert_eq!(p.amount, saga.total());
            assert_eq!(saga.total(), Some(usd(2_500)));
            for line in &placed().lines {
                let item = &world.items[line.sku.as_str()];
                assert_eq!(item.on_hand, item.initial - line.quantity, "{}", line.sku);
            }
            // Released for the carrier, and nothing left before the capture.
            let shipped = [ShipStatus::Released, ShipStatus::Dispatched];
            assert!(shipped.contains(&world.shipment.expect("a shipment")));
            assert_eq!(world.order.status, OrderStatus::Confirmed);
        }
        SagaStatus::Compensated => {
            let status = world.order.status;
            assert!(matches!(
                status,
                OrderStatus::Rejected | OrderStatus::Cancelled
            ));
            assert!(
                !p.authorized || p.voided || p.refunded,
                "authorization left: {p:?}"
            );
            assert!(!p.captured || p.refunded, "capture left: {p:?}");
            assert!(!p.void_pending || !p.authorized, "{p:?}");
            for (sku, item) in &world.items {
                assert_eq!(item.on_hand, item.initial, "stock of {sku} not restored");
            }
            let ship = world.shipment;
            assert!(!matches!(
                ship,
                Some(ShipStatus::Scheduled | ShipStatus::Released | ShipStatus::Dispatched)
            ));
        }
        other => panic!("unexpected end {other:?}: {:?}", saga.attention_reason()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_saga_always_ends_consistently_with_the_world(
        token in 0_u8..6,
        stock in 0_u8..8,
        refuse in proptest::bool::weighted(0.2),
        cancel in proptest::bool::weighted(0.3),
        dispatch in proptest::bool::weighted(0.5),
        remembers in proptest::bool::weighted(0.5),
        choices in proptest::collection::vec(any::<u32>(), 0..400),
    ) {
        let flags = Flags { refuse, cancel, dispatch, remembers };
        let mut driver = Driver::new(scenario(token, stock, flags));
        let mut choices = choices.into_iter();
        let mut steps = 0;
        while driver.step(choices.next()) {
            steps += 1;
            prop_assert!(steps < MAX_STEPS, "no end after {steps} steps: {:?}", driver.saga);
        }
        prop_assert!(driver.saga.is_terminal(), "stuck: {:?}", driver.saga);
        check_outcome(&driver);
        let sandbox_ok = matches!(driver.world.scenario.token, Token::Ok | Token::Flaky);
        let happy = sandbox_ok && stock <= 4 && !refuse && !cancel;
        if happy && driver.premature_deadlines == 0 {
            prop_assert_eq!(driver.saga.status(), SagaStatus::Completed);
        }
    }
}
