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
