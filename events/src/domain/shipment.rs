//! Messages of the Shipment aggregate: one shipment per order, keyed by its
//! [`OrderId`].
//!
//! The saga requests a shipment, the carrier adapter records the carrier's
//! answer (scheduled or refused), the saga releases it once the payment is
//! captured, and the carrier's own endpoints dispatch and deliver it. A
//! shipment can be cancelled only before dispatch, and dispatched only after
//! its release, so goods never leave before the money is taken.
//!
//! [`OrderId`]: crate::domain::ids::OrderId

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::address::{Address, AddressField};

/// Where a shipment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    /// Waiting for the carrier's answer.
    Requested,
    Scheduled,
    /// The payment is captured: the carrier may dispatch it.
    Released,
    Refused,
    Cancelled,
    Dispatched,
    Delivered,
}

impl ShipmentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Scheduled => "scheduled",
            Self::Released => "released",
            Self::Refused => "refused",
            Self::Cancelled => "cancelled",
            Self::Dispatched => "dispatched",
            Self::Delivered => "delivered",
        }
    }
}

impl fmt::Display for ShipmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be asked of a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum ShipmentCommand {
    /// Saga: ask the carrier to schedule a shipment to `address`.
    RequestShipment { address: Address },
    /// Carrier adapter: the carrier scheduled it under `tracking_ref`.
    /// `carrier` is the carrier's id, the `sub` of its tokens: only that
    /// carrier may dispatch and deliver the shipment.
    RecordScheduled {
        tracking_ref: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carrier: Option<String>,
    },
    /// Carrier adapter: the carrier refused it (for example country `ZZ`).
    RecordRefused { reason: String },
    /// Saga: the payment is captured, the carrier may dispatch.
    Release,
    /// Saga: cancel before dispatch.
    Cancel,
    /// Carrier: the parcel left the warehouse.
    Dispatch,
    /// Carrier: the parcel reached the customer.
    Deliver,
}

impl ShipmentCommand {
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::RequestShipment { .. } => "RequestShipment",
            Self::RecordScheduled { .. } => "RecordScheduled",
            Self::RecordRefused { .. } => "RecordRefused",
            Self::Release => "Release",
            Self::Cancel => "Cancel",
            Self::Dispatch => "Dispatch",
            Self::Deliver => "Deliver",
        }
    }
}

/// What happened to a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum ShipmentEvent {
    ShipmentRequested {
        address: Address,
    },
    /// May arrive after a cancellation (the carrier answered late). The status
    /// then stays `cancelled` and the carrier adapter withdraws the booking
    /// under `tracking_ref`.
    ShipmentScheduled {
        tracking_ref: String,
        /// The carrier it is booked with (absent in events from before
        /// carriers were recorded: only operators act on those).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carrier: Option<String>,
    },
    ShipmentRefused {
        reason: String,
    },
    /// The payment is captured: the carrier may dispatch the parcel.
    ShipmentReleased,
    ShipmentCancelled,
    ShipmentDispatched,
    ShipmentDelivered,
}

impl ShipmentEvent {
    pub const SCHEMA_VERSION: u16 = 1;

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ShipmentRequested { .. } => "ShipmentRequested",
            Self::ShipmentScheduled { .. } => "ShipmentScheduled",
            Self::ShipmentRefused { .. } => "ShipmentRefused",
            Self::ShipmentReleased => "ShipmentReleased",
            Self::ShipmentCancelled => "ShipmentCancelled",
            Self::ShipmentDispatched => "ShipmentDispatched",
            Self::ShipmentDelivered => "ShipmentDelivered",
        }
    }
}

/// Why a shipment command was refused without recording anything.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShipmentRejection {
    #[error("shipment not found")]
    NotFound,
    #[error("invalid shipping address field {field}")]
    InvalidAddress { field: AddressField },
    #[error("invalid tracking reference: expected 1 to 200 printable characters")]
    InvalidTrackingRef,
    #[error("invalid reason: expected 1 to 500 printable characters")]
    InvalidReason,
    #[error("shipment was already requested to a different address")]
    AlreadyRequested,
    #[error("shipment was already scheduled under a different tracking reference")]
    TrackingRefMismatch,
    #[error("shipment is already {status}")]
    AlreadyScheduled { status: ShipmentStatus },
    #[error("shipment was refused by the carrier")]
    Refused,
    #[error("shipment was cancelled")]
    Cancelled,
    #[error("shipment is already {status}")]
    AlreadyDispatched { status: ShipmentStatus },
    #[error("shipment is {status}, not scheduled")]
    NotScheduled { status: ShipmentStatus },
    #[error("shipment is {status}: it may be dispatched once the payment is captured")]
    NotReleased { status: ShipmentStatus },
    #[error("shipment is {status}, not dispatched")]
    NotDispatched { status: ShipmentStatus },
}

impl ShipmentRejection {
    /// Stable snake_case code, the suffix of the problem+json `type`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "shipment_not_found",
            Self::InvalidAddress { .. } => "invalid_shipping_address",
            Self::InvalidTrackingRef => "invalid_tracking_ref",
            Self::InvalidReason => "invalid_reason",
            Self::AlreadyRequested => "shipment_already_requested",
            Self::TrackingRefMismatch => "tracking_ref_mismatch",
            Self::AlreadyScheduled { .. } => "shipment_already_scheduled",
            Self::Refused => "shipment_refused",
            Self::Cancelled => "shipment_cancelled",
            Self::AlreadyDispatched { .. } => "shipment_already_dispatched",
            Self::NotScheduled { .. } => "shipment_not_scheduled",
            Self::NotReleased { .. } => "shipment_not_released",
            Self::NotDispatched { .. } => "shipment_not_dispatched",
        }
    }

    /// True when the shipment's state conflicts with the command (HTTP 409);
    /// false when the command itself is invalid (HTTP 422).
    pub fn is_conflict(&self) -> bool {
        // An exhaustive match, so a new variant forces a decision here.
        match self {
            Self::NotFound
            | Self::InvalidAddress { .. }
            | Self::InvalidTrackingRef
            | Self::InvalidReason => false,
            Self::AlreadyRequested
            | Self::TrackingRefMismatch
            | Self::AlreadyScheduled { .. }
            | Self::Refused
            | Self::Cancelled
            | Self::AlreadyDispatched { .. }
            | Self::NotScheduled { .. }
            | Self::NotReleased { .. }
            | Self::NotDispatched { .. } => true,
        }
    }

    /// True when the shipment does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}
