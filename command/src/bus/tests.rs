use super::*;
use events::command::{Outcome, RejectionKind};
use proptest::prelude::*;

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
    assert_eq!(lock(&sink.0).recent[&id].reply(id).aggregate_id, "order-1");
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
    assert_eq!(replies.recent.len(), 1);
}

/// What a customer's `POST /orders` gets back.
fn order_placed(n: u128) -> Reply {
    Reply {
        command_id: Uuid::new_v4(),
        aggregate_type: AggregateType::Order,
        aggregate_id: Uuid::new_v4().to_string(),
        fingerprint: Uuid::new_v5(&Uuid::NAMESPACE_OID, &n.to_le_bytes()).to_string(),
        outcome: Outcome::Accepted {
            version: 1,
            events: vec!["OrderPlaced".into()],
        },
        processed_at: chrono::Utc::now(),
        issued_by: Some(Principal {
            subject: format!("customer-{n}"),
            role: Role::Customer,
        }),
    }
}

fn rejected(reply: Reply) -> Reply {
    Reply {
        outcome: Outcome::Rejected {
            kind: RejectionKind::Conflict,
            code: "version_conflict".into(),
            message: "expected version 3, found 4".into(),
            version: 4,
        },
        ..reply
    }
}

/// The reply `reply` is remembered as, given back.
fn round_trip(reply: &Reply) -> Reply {
    Remembered::new(reply.clone()).reply(reply.command_id)
}

fn is_compact(reply: &Reply) -> bool {
    matches!(Remembered::new(reply.clone()), Remembered::Compact(_))
}

#[test]
fn accepted_and_rejected_replies_come_back_equal_with_and_without_an_issuer() {
    let mut many = order_placed(1);
    many.outcome = Outcome::Accepted {
        version: 7,
        events: vec![
            "PaymentAuthorized".into(),
            "".into(),
            "PaymentCaptured".into(),
        ],
    };
    let mut none = order_placed(2);
    none.outcome = Outcome::Accepted {
        version: 3,
        events: vec![],
    };
    for reply in [order_placed(3), rejected(order_placed(4)), many, none] {
        for issued_by in [reply.issued_by.clone(), None] {
            let reply = Reply {
                issued_by,
                ..reply.clone()
            };
            assert_eq!(round_trip(&reply), reply);
            assert!(is_compact(&reply), "{reply:?}");
        }
    }
}

#[test]
fn ids_and_fingerprints_that_are_not_canonical_uuids_are_kept_as_they_are() {
    let uuid = Uuid::new_v4();
    let others = [
        "f".to_owned(),
        String::new(),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        uuid.hyphenated().to_string().to_uppercase(),
        uuid.simple().to_string(),
        uuid.braced().to_string(),
        Uuid::nil().to_string(),
        "order-1".into(),
    ];
    for other in others {
        let mut reply = order_placed(5);
        reply.fingerprint = other.clone();
        assert_eq!(round_trip(&reply), reply);
        reply.aggregate_id = other.clone();
        assert_eq!(round_trip(&reply), reply);
        assert_eq!(
            round_trip(&rejected(reply.clone())),
            rejected(reply.clone())
        );
        reply.issued_by = None;
        assert_eq!(round_trip(&reply), reply);
    }
}

#[test]
fn replies_the_compact_form_cannot_hold_are_kept_whole() {
    let mut nul = order_placed(6);
    nul.issued_by.as_mut().unwrap().subject = "customer\0-6".into();
    let mut long = order_placed(7);
    long.outcome = Outcome::Accepted {
        version: 300,
        events: vec!["StockReserved".into(); 256],
    };
    for reply in [nul, long] {
        assert!(!is_compact(&reply));
        assert_eq!(round_trip(&reply), reply);
    }
}

#[test]
fn a_remembered_reply_knows_its_fingerprint() {
    let placed = order_placed(8);
    let upper = placed.fingerprint.to_uppercase();
    let mut odd = placed.clone();
    odd.aggregate_id = "order-8".into();
    odd.fingerprint = "another-request".into();
    let mut nul = placed.clone();
    nul.aggregate_id = "order\0-8".into();
    for reply in [placed, odd, nul] {
        let remembered = Remembered::new(reply.clone());
        assert!(remembered.has_fingerprint(&reply.fingerprint));
        for other in [
            &upper,
            "another",
            "",
            "order-8",
            &Uuid::new_v4().to_string(),
        ] {
            assert!(!remembered.has_fingerprint(other), "{other} for {reply:?}");
        }
    }
}

#[test]
fn a_remembered_reply_takes_at_most_72_bytes_beside_its_text() {
    assert!(std::mem::size_of::<Remembered>() <= 72);
}

#[test]
fn the_bound_forgets_the_oldest_reply() {
    let mut replies = Replies::default();
    let placed: Vec<Reply> = (0..=REMEMBERED as u128).map(order_placed).collect();
    for reply in placed.iter().cloned() {
        replies.record(reply);
    }
    assert_eq!(replies.recent.len(), REMEMBERED);
    assert!(!replies.recent.contains_key(&placed[0].command_id));
    for reply in [&placed[1], &placed[REMEMBERED / 2], &placed[REMEMBERED]] {
        assert_eq!(
            replies.recent[&reply.command_id].reply(reply.command_id),
            *reply
        );
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        Just(Uuid::nil().to_string()),
        "[0-9a-f]{64}",
        any::<String>(),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let kind = prop_oneof![
        Just(RejectionKind::Invalid),
        Just(RejectionKind::Conflict),
        Just(RejectionKind::NotFound),
    ];
    prop_oneof![
        (any::<u64>(), prop::collection::vec(text(), 0..4))
            .prop_map(|(version, events)| Outcome::Accepted { version, events }),
        (kind, text(), text(), any::<u64>()).prop_map(|(kind, code, message, version)| {
            Outcome::Rejected {
                kind,
                code,
                message,
                version,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn any_reply_comes_back_equal(
        aggregate_id in text(),
        fingerprint in text(),
        outcome in outcome(),
        issued_by in proptest::option::of((text(), 0usize..3)),
        asked in text(),
    ) {
        let reply = Reply {
            aggregate_id,
            fingerprint,
            outcome,
            issued_by: issued_by.map(|(subject, role)| Principal {
                subject,
                role: [Role::Customer, Role::Admin, Role::Carrier][role],
            }),
            ..order_placed(9)
        };
        prop_assert_eq!(round_trip(&reply), reply.clone());
        let remembered = Remembered::new(reply.clone());
        prop_assert!(remembered.has_fingerprint(&reply.fingerprint));
        prop_assert_eq!(remembered.has_fingerprint(&asked), asked == reply.fingerprint);
    }
}
