use std::collections::HashMap;

use events::domain::{SagaEvent, StepRecord};

use super::*;
use crate::machine::tests::{at, authorized, placed, priced, reserved, scheduled};

fn cause() -> Cause {
    Cause {
        id: Uuid::nil(),
        traceparent: None,
    }
}

/// The saga events `batch` queued, in order.
fn saga_events(batch: &mut Batch) -> Vec<SagaEvent> {
    batch
        .take_outbox()
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == Kind::Event)
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

fn steps(event: &SagaEvent) -> (u32, Vec<(&str, Option<&str>)>) {
    let progress = event.progress();
    let steps = progress
        .history
        .iter()
        .map(|s: &StepRecord| (s.step.as_str(), s.outcome.as_deref()));
    (progress.history_from, steps.collect())
}

/// A batch holding the saga of a just placed order, and its order id.
fn started() -> (Uuid, Batch) {
    let facts = placed();
    let mut batch = Batch::new(HashMap::new(), Pace::default(), at(0));
    batch.start(&facts, &cause());
    (*facts.order_id.as_uuid(), batch)
}

#[test]
fn each_saga_event_carries_the_steps_that_changed_since_the_one_before() {
    let (id, mut batch) = started();
    for input in [reserved("A", 2, 1_000), reserved("B", 1, 500)] {
        batch.feed(id, &input, &cause());
    }
    for input in [priced(), authorized(), scheduled()] {
        batch.feed(id, &input, &cause());
    }
    let events = saga_events(&mut batch);
    let carried: Vec<_> = events.iter().map(steps).collect();
    assert_eq!(
        carried,
        [
            (0, vec![("reserving_stock", None)]),
            (
                0,
                vec![
                    ("reserving_stock", Some("succeeded")),
                    ("authorizing_and_scheduling", None)
                ]
            ),
            (
                1,
                vec![
                    ("authorizing_and_scheduling", Some("succeeded")),
                    ("capturing_payment", None)
                ]
            ),
        ]
    );
    let saga = &batch.sagas[&id].saga;
    assert_eq!(saga.history().len(), 3, "the saga itself keeps every step");
}

#[test]
fn a_retry_carries_only_the_current_step_with_its_new_attempt() {
    let (id, mut batch) = started();
    let deadline = batch.sagas[&id].saga.deadline().unwrap();
    batch.now = deadline;
    batch.feed(id, &Input::DeadlineFired, &cause());
    let events = saga_events(&mut batch);
    let retried = events.last().unwrap().progress();
    assert_eq!((retried.attempt, retried.history_from), (2, 0));
    assert_eq!(retried.history.len(), 1);
    assert_eq!(retried.history[0].attempts, 2);
}
