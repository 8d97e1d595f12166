//! Given/when/then tests of the Shipment aggregate: every command at every
//! stage.

use events::domain::address::{Address, AddressField};
use events::domain::shipment::{
    ShipmentCommand as C, ShipmentEvent as E, ShipmentRejection as R, ShipmentStatus,
};

use super::Shipment;
use crate::aggregate::Aggregate;
use crate::aggregate::testing::{given, given_nothing};

fn address() -> Address {
    Address {
        name: "Ada Lovelace".into(),
        line1: "1 Main Street".into(),
        city: "Springfield".into(),
        postal_code: "12345".into(),
        country: "US".into(),
    }
}

fn requested() -> E {
    E::ShipmentRequested { address: address() }
}

fn scheduled(tracking_ref: &str) -> E {
    E::ShipmentScheduled {
        tracking_ref: tracking_ref.into(),
        carrier: None,
    }
}

fn refused() -> E {
    E::ShipmentRefused {
        reason: "country not served".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Requested,
    Scheduled,
    /// Scheduled, and released by the saga after the capture.
    Released,
    Refused,
    CancelledBeforeBooking,
    CancelledAfterBooking,
    CancelledAfterRelease,
    Dispatched,
    Delivered,
}

const ALL_STAGES: [Stage; 9] = [
    Stage::Requested,
    Stage::Scheduled,
    Stage::Released,
    Stage::Refused,
    Stage::CancelledBeforeBooking,
    Stage::CancelledAfterBooking,
    Stage::CancelledAfterRelease,
    Stage::Dispatched,
    Stage::Delivered,
];

fn history(stage: Stage) -> Vec<E> {
    let booked = vec![requested(), scheduled("trk_1")];
    let released = [booked.clone(), vec![E::ShipmentReleased]].concat();
    let dispatched = [released.clone(), vec![E::ShipmentDispatched]].concat();
    match stage {
        Stage::Requested => vec![requested()],
        Stage::Scheduled => booked,
        Stage::Released => released,
        Stage::Refused => vec![requested(), refused()],
        Stage::CancelledBeforeBooking => vec![requested(), E::ShipmentCancelled],
        Stage::CancelledAfterBooking => [booked, vec![E::ShipmentCancelled]].concat(),
        Stage::CancelledAfterRelease => [released, vec![E::ShipmentCancelled]].concat(),
        Stage::Dispatched => dispatched,
        Stage::Delivered => [dispatched, vec![E::ShipmentDelivered]].concat(),
    }
}

fn status_of(stage: Stage) -> ShipmentStatus {
    match stage {
        Stage::Requested => ShipmentStatus::Requested,
        Stage::Scheduled => ShipmentStatus::Scheduled,
        Stage::Released => ShipmentStatus::Released,
        Stage::Refused => ShipmentStatus::Refused,
        Stage::CancelledBeforeBooking
        | Stage::CancelledAfterBooking
        | Stage::CancelledAfterRelease => ShipmentStatus::Cancelled,
        Stage::Dispatched => ShipmentStatus::Dispatched,
        Stage::Delivered => ShipmentStatus::Delivered,
    }
}

#[track_caller]
fn expect(stage: Stage, command: C, outcome: Result<Vec<E>, R>) {
    let then = given(history(stage)).when(command);
    match outcome {
        Ok(events) => then.then_events(events),
        Err(rejection) => then.then_rejects(rejection),
    };
}

#[test]
fn request_shipment_records_the_address() {
    given_nothing::<Shipment>()
        .when(C::RequestShipment { address: address() })
        .then_events([requested()])
        .then_repeat_is_noop()
        .then_state(|shipment| {
            assert!(shipment.exists());
            assert_eq!(shipment.status(), Some(ShipmentStatus::Requested));
            assert_eq!(shipment.address(), Some(&address()));
        });
}

#[test]
fn request_shipment_again_to_another_address_is_a_conflict() {
    let elsewhere = Address {
        city: "Shelbyville".into(),
        ..address()
    };
    for stage in ALL_STAGES {
        let command = C::RequestShipment {
            address: elsewhere.clone(),
        };
        expect(stage, command, Err(R::AlreadyRequested));
    }
}

#[test]
fn request_shipment_validates_the_address() {
    let bad = Address {
        country: "Z".into(),
        ..address()
    };
    given_nothing::<Shipment>()
        .when(C::RequestShipment { address: bad })
        .then_rejects(R::InvalidAddress {
            field: AddressField::Country,
        });
}

#[test]
fn every_other_command_on_a_missing_shipment_is_not_found() {
    let commands = [
        C::RecordScheduled {
            tracking_ref: "trk_1".into(),
            carrier: None,
        },
        C::RecordRefused {
            reason: "no".into(),
        },
        C::Release,
        C::Cancel,
        C::Dispatch,
        C::Deliver,
    ];
    for command in commands {
        given_nothing::<Shipment>()
            .when(command)
            .then_rejects(R::NotFound);
    }
}

#[test]
fn record_scheduled_at_every_stage() {
    let command = || C::RecordScheduled {
        tracking_ref: "trk_1".into(),
        carrier: None,
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Requested | Stage::CancelledBeforeBooking => Ok(vec![scheduled("trk_1")]),
            Stage::Refused => Err(R::Refused),
            Stage::Scheduled
            | Stage::Released
            | Stage::CancelledAfterBooking
            | Stage::CancelledAfterRelease
            | Stage::Dispatched
            | Stage::Delivered => Ok(vec![]),
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn record_scheduled_under_another_tracking_ref_is_a_conflict() {
    for stage in [
        Stage::Scheduled,
        Stage::Released,
        Stage::CancelledAfterBooking,
        Stage::Dispatched,
    ] {
        let command = C::RecordScheduled {
            tracking_ref: "trk_2".into(),
            carrier: None,
        };
        expect(stage, command, Err(R::TrackingRefMismatch));
    }
}

#[test]
fn a_late_booking_keeps_the_shipment_cancelled_and_is_withdrawn() {
    given(history(Stage::CancelledBeforeBooking))
        .when(C::RecordScheduled {
            tracking_ref: "trk_late".into(),
            carrier: None,
        })
        .then_repeat_is_noop()
        .then_state(|shipment| {
            assert_eq!(shipment.status(), Some(ShipmentStatus::Cancelled));
            assert_eq!(shipment.booking_to_withdraw(), Some("trk_late"));
        });
}

#[test]
fn record_refused_at_every_stage() {
    let command = || C::RecordRefused {
        reason: "country not served".into(),
    };
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Requested => Ok(vec![refused()]),
            Stage::Refused
            | Stage::CancelledBeforeBooking
            | Stage::CancelledAfterBooking
            | Stage::CancelledAfterRelease => Ok(vec![]),
            Stage::Scheduled | Stage::Released | Stage::Dispatched | Stage::Delivered => {
                Err(R::AlreadyScheduled {
                    status: status_of(stage),
                })
            }
        };
        expect(stage, command(), outcome);
    }
}

#[test]
fn a_refused_shipment_keeps_its_reason() {
    let shipment = Shipment::replay(&history(Stage::Refused));
    assert_eq!(shipment.status(), Some(ShipmentStatus::Refused));
    assert_eq!(shipment.refusal_reason(), Some("country not served"));
    assert_eq!(shipment.booking_to_withdraw(), None);
}

#[test]
fn cancel_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Requested | Stage::Scheduled | Stage::Released => Ok(vec![E::ShipmentCancelled]),
            Stage::Refused
            | Stage::CancelledBeforeBooking
            | Stage::CancelledAfterBooking
            | Stage::CancelledAfterRelease => Ok(vec![]),
            Stage::Dispatched | Stage::Delivered => Err(R::AlreadyDispatched {
                status: status_of(stage),
            }),
        };
        expect(stage, C::Cancel, outcome);
    }
}

#[test]
fn cancelling_a_booked_shipment_names_the_booking_to_withdraw() {
    given(history(Stage::Scheduled))
        .when(C::Cancel)
        .then_repeat_is_noop()
        .then_state(|shipment| assert_eq!(shipment.booking_to_withdraw(), Some("trk_1")));
}

#[test]
fn release_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Scheduled => Ok(vec![E::ShipmentReleased]),
            Stage::Released | Stage::Dispatched | Stage::Delivered => Ok(vec![]),
            Stage::Requested => Err(R::NotScheduled {
                status: ShipmentStatus::Requested,
            }),
            Stage::Refused => Err(R::Refused),
            Stage::CancelledBeforeBooking
            | Stage::CancelledAfterBooking
            | Stage::CancelledAfterRelease => Err(R::Cancelled),
        };
        expect(stage, C::Release, outcome);
    }
}

#[test]
fn dispatch_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Released => Ok(vec![E::ShipmentDispatched]),
            Stage::Dispatched | Stage::Delivered => Ok(vec![]),
            Stage::Requested => Err(R::NotScheduled {
                status: ShipmentStatus::Requested,
            }),
            Stage::Scheduled => Err(R::NotReleased {
                status: ShipmentStatus::Scheduled,
            }),
            Stage::Refused => Err(R::Refused),
            Stage::CancelledBeforeBooking
            | Stage::CancelledAfterBooking
            | Stage::CancelledAfterRelease => Err(R::Cancelled),
        };
        expect(stage, C::Dispatch, outcome);
    }
}

#[test]
fn a_scheduled_shipment_is_not_dispatched_before_the_capture_and_is_after_its_release() {
    // Booked, payment not captured yet: the carrier is turned away, a 409.
    let refusal = R::NotReleased {
        status: ShipmentStatus::Scheduled,
    };
    assert!(refusal.is_conflict());
    assert_eq!(refusal.code(), "shipment_not_released");
    given(history(Stage::Scheduled))
        .when(C::Dispatch)
        .then_rejects(refusal);
    // The saga captured the payment and released the shipment.
    given(history(Stage::Scheduled))
        .when(C::Release)
        .then_events([E::ShipmentReleased])
        .then_repeat_is_noop()
        .then_state(|shipment| {
            assert_eq!(shipment.status(), Some(ShipmentStatus::Released));
            assert_eq!(shipment.tracking_ref(), Some("trk_1"));
        });
    given(history(Stage::Released))
        .when(C::Dispatch)
        .then_events([E::ShipmentDispatched])
        .then_repeat_is_noop();
}

#[test]
fn a_release_does_not_revive_a_cancelled_shipment() {
    let shipment = Shipment::replay(
        &[
            history(Stage::CancelledAfterBooking),
            vec![E::ShipmentReleased],
        ]
        .concat(),
    );
    assert_eq!(shipment.status(), Some(ShipmentStatus::Cancelled));
}

#[test]
fn deliver_at_every_stage() {
    for stage in ALL_STAGES {
        let outcome = match stage {
            Stage::Dispatched => Ok(vec![E::ShipmentDelivered]),
            Stage::Delivered => Ok(vec![]),
            Stage::Requested | Stage::Scheduled | Stage::Released => Err(R::NotDispatched {
                status: status_of(stage),
            }),
            Stage::Refused => Err(R::Refused),
            Stage::CancelledBeforeBooking
            | Stage::CancelledAfterBooking
            | Stage::CancelledAfterRelease => Err(R::Cancelled),
        };
        expect(stage, C::Deliver, outcome);
    }
}

#[test]
fn carrier_answers_are_validated() {
    for tracking_ref in ["", " ", &"t".repeat(201)] {
        let command = C::RecordScheduled {
            tracking_ref: tracking_ref.into(),
            carrier: None,
        };
        expect(Stage::Requested, command, Err(R::InvalidTrackingRef));
    }
    for reason in ["", "\u{7}", &"r".repeat(501)] {
        let command = C::RecordRefused {
            reason: reason.into(),
        };
        expect(Stage::Requested, command, Err(R::InvalidReason));
    }
}

#[test]
fn the_happy_path_ends_delivered_with_its_tracking_ref() {
    given(history(Stage::Dispatched))
        .when(C::Deliver)
        .then_state(|shipment| {
            assert_eq!(shipment.status(), Some(ShipmentStatus::Delivered));
            assert_eq!(shipment.tracking_ref(), Some("trk_1"));
        });
}
