use super::*;
use events::command::Outcome;

fn reply(command_id: Uuid, fingerprint: &str) -> Reply {
    Reply {
        command_id,
        aggregate_type: AggregateType::Order,
        aggregate_id: "order-1".into(),
        fingerprint: fingerprint.into(),
        outcome: Outcome::Accepted {
            version: 1,
            events: vec!["OrderPlaced".into()],
        },
        processed_at: chrono::Utc::now(),
        issued_by: None,
    }
}

#[tokio::test]
async fn a_committed_reply_answers_the_waiting_request_once() {
    let sink = ReplySink::default();
    let id = Uuid::new_v4();
    let (tx, rx) = oneshot::channel();
    lock(&sink.0)
        .waiters
        .entry((id, "f1".into()))
        .or_default()
        .push(tx);
    // The replies consumer reads the same reply later: the first one stays.
    sink.committed([reply(id, "f1")]);
    let mut late = reply(id, "f1");
    late.aggregate_id = "order-2".into();
    lock(&sink.0).record(late);
    assert_eq!(rx.await.unwrap().aggregate_id, "order-1");
    assert_eq!(lock(&sink.0).recent[&id].aggregate_id, "order-1");
}

#[tokio::test]
async fn a_reply_to_another_fingerprint_does_not_answer() {
    let sink = ReplySink::default();
    let id = Uuid::new_v4();
    let (tx, mut rx) = oneshot::channel();
    lock(&sink.0)
        .waiters
        .entry((id, "f1".into()))
        .or_default()
        .push(tx);
    sink.committed([reply(id, "f2")]);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn replies_to_internal_commands_answer_waiters_but_are_not_remembered() {
    let sink = ReplySink::default();
    let (saga, customer) = (Uuid::new_v4(), Uuid::new_v4());
    let (tx, rx) = oneshot::channel();
    lock(&sink.0)
        .waiters
        .entry((saga, "f1".into()))
        .or_default()
        .push(tx);
    let by = |role, subject: &str| {
        Some(Principal {
            subject: subject.into(),
            role,
        })
    };
    let mut internal = reply(saga, "f1");
    internal.issued_by = by(Role::System, "saga");
    let mut placed = reply(customer, "f1");
    placed.issued_by = by(Role::Customer, "c-1");
    sink.committed([internal, placed]);
    assert_eq!(rx.await.unwrap().command_id, saga);
    let replies = lock(&sink.0);
    assert!(!replies.recent.contains_key(&saga));
    assert!(replies.recent.contains_key(&customer));
    assert_eq!(replies.recent_order.len(), 1);
}
