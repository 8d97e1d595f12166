//! The form in which the command API remembers a reply for `GET /commands/{id}`
//! and for a repeated dispatch: [`Remembered`], which rebuilds a [`Reply`]
//! equal to the one it was made from.
//!
//! A whole reply took about 190 bytes in the map and five more allocations
//! (the aggregate id, the fingerprint, the event list and its name, the
//! issuer's subject): about 480 bytes for an order placed by a customer,
//! 46 MiB at the bound. Here the aggregate id and the fingerprint are kept
//! as the 16 bytes of the UUID they spell when they spell one (an order's id
//! and every fingerprint `CommandEnvelope::fingerprint_of` computes), and
//! every other string shares one allocation: about 200 bytes, 19.5 MiB at
//! the bound, with the map's links.

use chrono::{DateTime, Utc};
use events::AggregateType;
use events::command::{Outcome, Principal, RejectionKind, Reply, Role};
use uuid::Uuid;

/// Separates the strings of [`Compact::text`]. A reply with a string that
/// contains it is kept whole.
const SEPARATOR: &str = "\0";

/// A remembered reply, without its command id (the map's key).
pub(super) enum Remembered {
    Compact(Compact),
    /// A reply the compact form cannot hold (a string with a NUL in it, or
    /// more than 255 event types): kept as it came.
    Whole(Box<Reply>),
}

pub(super) struct Compact {
    processed_at: DateTime<Utc>,
    /// The outcome's version, accepted or rejected.
    version: u64,
    /// The aggregate id and the fingerprint when each is a UUID in its
    /// canonical form (lowercase, hyphenated) other than the nil UUID;
    /// the nil UUID when the string is in `text` instead.
    aggregate_id: Uuid,
    fingerprint: Uuid,
    aggregate_type: AggregateType,
    /// The issuer's role; its subject is in `text`.
    issuer: Option<Role>,
    /// `None` when the command was accepted.
    rejected: Option<RejectionKind>,
    /// How many event types an accepted outcome lists.
    events: u8,
    /// The other strings, separated by [`SEPARATOR`], in this order: the
    /// aggregate id and the fingerprint unless kept as UUIDs, the issuer's
    /// subject, then the event types, or the rejection's code and message.
    text: Box<str>,
}

impl Remembered {
    pub(super) fn new(reply: Reply) -> Remembered {
        let (version, rejected, events, outcome): (_, _, _, Vec<&str>) = match &reply.outcome {
            Outcome::Accepted { version, events } => match u8::try_from(events.len()) {
                Ok(count) => (
                    *version,
                    None,
                    count,
                    events.iter().map(String::as_str).collect(),
                ),
                Err(_) => return Remembered::Whole(Box::new(reply)),
            },
            Outcome::Rejected {
                kind,
                code,
                message,
                version,
            } => (
                *version,
                Some(*kind),
                0,
                vec![code.as_str(), message.as_str()],
            ),
        };
        let aggregate_id = uuid_of(&reply.aggregate_id);
        let fingerprint = uuid_of(&reply.fingerprint);
        let strings: Vec<&str> = [
            aggregate_id.is_nil().then_some(&*reply.aggregate_id),
            fingerprint.is_nil().then_some(&*reply.fingerprint),
            reply.issued_by.as_ref().map(|issuer| &*issuer.subject),
        ]
        .into_iter()
        .flatten()
        .chain(outcome)
        .collect();
        if strings.iter().any(|s| s.contains(SEPARATOR)) {
            return Remembered::Whole(Box::new(reply));
        }
        Remembered::Compact(Compact {
            processed_at: reply.processed_at,
            version,
            aggregate_id,
            fingerprint,
            aggregate_type: reply.aggregate_type,
            issuer: reply.issued_by.as_ref().map(|issuer| issuer.role),
            rejected,
            events,
            text: strings.join(SEPARATOR).into(),
        })
    }

    /// Whether the reply answers a command with this fingerprint.
    pub(super) fn has_fingerprint(&self, fingerprint: &str) -> bool {
        match self {
            Remembered::Compact(c) if c.fingerprint.is_nil() => {
                let mut text = c.text.split(SEPARATOR);
                if c.aggregate_id.is_nil() {
                    text.next();
                }
                text.next() == Some(fingerprint)
            }
            Remembered::Compact(c) => uuid_of(fingerprint) == c.fingerprint,
            Remembered::Whole(reply) => reply.fingerprint == fingerprint,
        }
    }

    /// The reply this was made from, whose command id is `command_id`.
    pub(super) fn reply(&self, command_id: Uuid) -> Reply {
        let c = match self {
            Remembered::Compact(c) => c,
            Remembered::Whole(reply) => return Reply::clone(reply),
        };
        let mut text = c.text.split(SEPARATOR);
        let mut next = || text.next().unwrap_or_default().to_owned();
        let mut string_or = |uuid: Uuid| {
            if uuid.is_nil() {
                next()
            } else {
                uuid.to_string()
            }
        };
        let aggregate_id = string_or(c.aggregate_id);
        let fingerprint = string_or(c.fingerprint);
        let issued_by = c.issuer.map(|role| Principal {
            subject: next(),
            role,
        });
        let outcome = match c.rejected {
            None => Outcome::Accepted {
                version: c.version,
                events: (0..c.events).map(|_| next()).collect(),
            },
            Some(kind) => Outcome::Rejected {
                kind,
                code: next(),
                message: next(),
                version: c.version,
            },
        };
        Reply {
            command_id,
            aggregate_type: c.aggregate_type,
            aggregate_id,
            fingerprint,
            outcome,
            processed_at: c.processed_at,
            issued_by,
        }
    }
}

/// The UUID `text` spells in its canonical form, or the nil UUID when it
/// spells none (or the nil UUID itself, which is then kept as text).
fn uuid_of(text: &str) -> Uuid {
    let mut canonical = Uuid::encode_buffer();
    Uuid::try_parse(text)
        .ok()
        .filter(|uuid| uuid.hyphenated().encode_lower(&mut canonical) == text)
        .unwrap_or_default()
}
