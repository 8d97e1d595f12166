use super::*;
use crate::views::testing::{at, meta};
use events::domain::{CustomerId, SagaProgress, SagaStatus};

const ID: &str = "01900000-0000-7000-8000-000000000002";

fn progress(status: SagaStatus, step: &str, attempt: u32) -> SagaProgress {
    SagaProgress {
        customer_id: CustomerId::new("cust-1").unwrap(),
        status,
        step: step.into(),
        attempt,
        deadline: Some(at(100)),
        last_error: (attempt > 1).then(|| "capture failed".to_owned()),
        history_from: 0,
        history: vec![StepRecord {
            step: "reserving_stock".into(),
            started_at: at(1),
            attempts: 1,
            outcome: Some("succeeded".into()),
        }],
    }
}

fn apply(row: Option<SagaRow>, sequence: u64, event: &SagaEvent) -> Option<SagaRow> {
    evolve(
        row,
        &meta(AggregateType::Saga, ID, sequence, event.event_type()),
        event,
    )
}

fn started() -> SagaEvent {
    SagaEvent::SagaStarted {
        progress: progress(SagaStatus::Running, "reserving_stock", 1),
    }
}

fn parked() -> SagaEvent {
    SagaEvent::SagaNeedsAttention {
        reason: "void keeps failing".into(),
        progress: progress(SagaStatus::NeedsAttention, "voiding_payment", 5),
    }
}

#[test]
fn a_row_is_the_latest_event_with_its_whole_progress() {
    let row = apply(apply(None, 1, &started()), 2, &parked()).unwrap();
    assert_eq!(row.order_id.to_string(), ID);
    assert_eq!(
        (row.status.as_str(), row.current_step.as_str(), row.attempt),
        ("needs_attention", "voiding_payment", 5)
    );
    assert_eq!(row.reason.as_deref(), Some("void keeps failing"));
    assert_eq!(row.last_error.as_deref(), Some("capture failed"));
    assert_eq!(row.deadline_at, Some(at(100)));
    assert_eq!(
        (row.version, row.last_event.as_str()),
        (2, "SagaNeedsAttention")
    );
    assert_eq!(row.history.0.len(), 1);
    assert_eq!((row.started_at, row.updated_at), (at(1), at(2)));
}

#[test]
fn older_and_duplicated_events_change_nothing() {
    let latest = apply(None, 3, &parked()).unwrap();
    assert_eq!(
        apply(Some(latest.clone()), 1, &started()),
        Some(latest.clone())
    );
    assert_eq!(apply(Some(latest.clone()), 3, &parked()), Some(latest));
}

#[test]
fn a_resolution_keeps_the_reason_and_adds_the_note() {
    let parked = apply(None, 4, &parked());
    let resolved = SagaEvent::SagaResolved {
        note: "refunded by hand".into(),
        progress: progress(SagaStatus::ResolvedByOperator, "voiding_payment", 5),
    };
    let row = apply(parked, 5, &resolved).unwrap();
    assert_eq!(row.status, "resolved_by_operator");
    assert_eq!(row.reason.as_deref(), Some("void keeps failing"));
    assert_eq!(row.note.as_deref(), Some("refunded by hand"));
}

#[test]
fn a_saga_first_seen_midway_starts_with_its_first_step() {
    let mut event = parked();
    if let SagaEvent::SagaNeedsAttention { progress, .. } = &mut event {
        progress.history.clear();
    }
    let row = apply(None, 7, &event).unwrap();
    assert_eq!(row.started_at, at(7), "without history, the event's time");
    let row = apply(None, 7, &parked()).unwrap();
    assert_eq!(row.started_at, at(1));
}

fn step(name: &str, started: u64, attempts: u32, outcome: Option<&str>) -> StepRecord {
    StepRecord {
        step: name.into(),
        started_at: at(started),
        attempts,
        outcome: outcome.map(str::to_owned),
    }
}

/// A `SagaStepStarted` that changed the steps from position `from` on.
fn stepped(from: u32, steps: Vec<StepRecord>) -> SagaEvent {
    let mut progress = progress(SagaStatus::Running, &steps.last().unwrap().step, 1);
    progress.history_from = from;
    progress.history = steps;
    SagaEvent::SagaStepStarted { progress }
}

fn names(row: &SagaRow) -> Vec<(String, u32, Option<String>)> {
    row.steps()
        .map(|s| (s.step.clone(), s.attempts, s.outcome.clone()))
        .collect()
}

fn named(steps: &[(&str, u32, Option<&str>)]) -> Vec<(String, u32, Option<String>)> {
    steps
        .iter()
        .map(|(name, attempts, outcome)| {
            ((*name).to_owned(), *attempts, outcome.map(str::to_owned))
        })
        .collect()
}

/// Three events as the saga writes them: the first step, the next step
/// (closing the first), a second attempt of it.
fn changes() -> [SagaEvent; 3] {
    [
        stepped(0, vec![step("reserving_stock", 1, 1, None)]),
        stepped(
            0,
            vec![
                step("reserving_stock", 1, 1, Some("succeeded")),
                step("capturing_payment", 2, 1, None),
            ],
        ),
        stepped(1, vec![step("capturing_payment", 2, 2, None)]),
    ]
}

#[test]
fn each_event_changes_the_steps_it_carries_and_keeps_the_others() {
    let [first, second, third] = changes();
    let row = apply(apply(apply(None, 1, &first), 2, &second), 3, &third).unwrap();
    assert_eq!(
        names(&row),
        named(&[
            ("reserving_stock", 1, Some("succeeded")),
            ("capturing_payment", 2, None),
        ])
    );
    assert_eq!((row.version, row.started_at), (3, at(1)));
}

#[test]
fn an_event_delivered_after_newer_ones_fills_only_what_is_older_in_the_row() {
    let [first, second, third] = changes();
    // The relay published the second event after the third.
    let early = apply(apply(None, 1, &first), 3, &third).unwrap();
    assert_eq!(
        names(&early),
        named(&[("reserving_stock", 1, None), ("capturing_payment", 2, None)])
    );
    let row = apply(Some(early.clone()), 2, &second).unwrap();
    assert_eq!(
        names(&row),
        named(&[
            ("reserving_stock", 1, Some("succeeded")),
            ("capturing_payment", 2, None),
        ]),
        "the late event closes the first step, the third keeps its attempt"
    );
    assert_eq!(
        (row.version, row.current_step.as_str(), row.updated_at),
        (3, early.current_step.as_str(), early.updated_at)
    );
    assert_eq!(apply(Some(row.clone()), 2, &second), Some(row.clone()));
    assert_eq!(apply(Some(row.clone()), 3, &third), Some(row));
}

#[test]
fn a_step_whose_event_has_not_arrived_is_a_gap_until_it_does() {
    let first = stepped(0, vec![step("reserving_stock", 1, 1, None)]);
    let late = stepped(
        0,
        vec![
            step("reserving_stock", 1, 1, Some("succeeded")),
            step("authorizing_and_scheduling", 2, 1, Some("succeeded")),
        ],
    );
    let third = stepped(2, vec![step("capturing_payment", 3, 1, None)]);
    let gapped = apply(apply(None, 1, &first), 3, &third).unwrap();
    assert_eq!(gapped.history.0.len(), 3);
    assert_eq!(names(&gapped).len(), 2, "position 1 is not known yet");
    let row = apply(Some(gapped), 2, &late).unwrap();
    assert_eq!(
        names(&row),
        named(&[
            ("reserving_stock", 1, Some("succeeded")),
            ("authorizing_and_scheduling", 1, Some("succeeded")),
            ("capturing_payment", 1, None),
        ])
    );
}

#[test]
fn a_late_first_event_moves_the_start_back_and_a_late_reason_is_kept() {
    let [first, second, _] = changes();
    let compensating = SagaEvent::SagaCompensating {
        reason: "payment_declined".into(),
        progress: match first {
            SagaEvent::SagaStepStarted { progress } => progress,
            _ => unreachable!(),
        },
    };
    let row = apply(apply(None, 2, &second), 1, &compensating).unwrap();
    assert_eq!(row.started_at, at(1));
    assert_eq!(row.reason.as_deref(), Some("payment_declined"));
    assert_eq!(row.version, 2);
}

#[test]
fn steps_folded_before_deltas_count_as_new_as_their_row() {
    let [first, second, _] = changes();
    let mut row = apply(apply(None, 1, &first), 2, &second).unwrap();
    for step in row.history.0.iter_mut().flatten() {
        step.seq = None;
    }
    assert_eq!(apply(Some(row.clone()), 1, &first), Some(row));
}

#[test]
fn a_history_placed_beyond_any_saga_is_unreadable() {
    let mut event = stepped(0, vec![step("reserving_stock", 1, 1, None)]);
    if let SagaEvent::SagaStepStarted { progress } = &mut event {
        progress.history_from = u32::MAX;
    }
    let meta = meta(AggregateType::Saga, ID, 1, event.event_type());
    let record = Record {
        topic: "sagas.events".into(),
        partition: 0,
        offset: 0,
        key: Some(ID.into()),
        headers: Some(events::record::CopiedHeaders::of(
            &events::kafka::to_headers(&meta),
        )),
        payload: Some(serde_json::to_vec(&event).unwrap()),
        appended_at: None,
    };
    let error = decode_one(&record).unwrap_err();
    assert!(error.contains("more than the 10000"), "{error}");
}
