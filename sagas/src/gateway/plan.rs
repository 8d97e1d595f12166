//! Deciding a batch's calls: each payment or shipment request on the event
//! topics becomes the call the gateway owes the provider or the carrier,
//! judged against the payment as stored (`gateway_payments`) at that point
//! of the log. The whole batch reads and writes that table in one
//! PostgreSQL transaction, before any call is made, so the calls can then
//! run concurrently.

use std::collections::HashMap;

use events::domain::{Address, Money, OrderId, PaymentEvent, ShipmentEvent};
use events::message::EventPayload;
use events::record::Record;
use events::{AggregateType, EventMeta};
use sqlx::PgPool;
use uuid::Uuid;

use super::provider::PaymentRef;

/// A call owed to the provider or the carrier.
#[derive(Debug, Clone)]
pub enum Call {
    Authorize {
        payment: PaymentRef,
        amount: Money,
    },
    Capture {
        payment: PaymentRef,
        amount: Money,
    },
    /// `record`: answer `RecordVoided`, because an authorization exists.
    Void {
        payment: PaymentRef,
        record: bool,
    },
    Refund {
        payment: PaymentRef,
        amount: Money,
    },
    Schedule {
        order_id: OrderId,
        address: Address,
    },
    /// Withdraws the booking of a cancelled shipment; needs no answer.
    Withdraw {
        order_id: OrderId,
    },
}

impl Call {
    /// What the call does, for its span.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Authorize { .. } => "authorize",
            Call::Capture { .. } => "capture",
            Call::Void { .. } => "void",
            Call::Refund { .. } => "refund",
            Call::Schedule { .. } => "schedule shipment",
            Call::Withdraw { .. } => "withdraw shipment",
        }
    }
}

/// A request event and the call it needs.
#[derive(Debug, Clone)]
pub struct Request {
    pub cause: EventMeta,
    pub order_id: OrderId,
    pub call: Call,
}

/// What the gateway keeps of a payment.
#[derive(Debug, Clone, Default)]
struct Payment {
    token: String,
    provider_ref: Option<String>,
    void_requested: bool,
    known: bool,
    changed: bool,
}

impl Payment {
    fn reference(&self, order_id: OrderId) -> PaymentRef {
        PaymentRef {
            order_id,
            token: self.token.clone(),
            provider_ref: self.provider_ref.clone(),
            attempt: 1,
        }
    }
}

/// The calls `records` need, in log order, after storing what they taught
/// about the payments, in one transaction (none for a batch of shipment
/// events only).
pub async fn plan(pool: &PgPool, records: &[Record]) -> Result<Vec<Request>, sqlx::Error> {
    let events: Vec<(EventMeta, OrderId, Event)> = records.iter().filter_map(read).collect();
    let orders: Vec<Uuid> = events
        .iter()
        .filter(|(_, _, event)| matches!(event, Event::Payment(_)))
        .map(|(_, order_id, _)| *order_id.as_uuid())
        .collect();
    if orders.is_empty() {
        // Shipments only: nothing to read or store, so no transaction.
        return Ok(calls(events, &mut HashMap::new()));
    }
    let mut tx = pool.begin().await?;
    let mut payments = load(&mut tx, &orders).await?;
    let requests = calls(events, &mut payments);
    store(&mut tx, &payments).await?;
    tx.commit().await?;
    Ok(requests)
}

/// The calls the events need, in log order, judged against `payments` as
/// they change along the way.
fn calls(
    events: Vec<(EventMeta, OrderId, Event)>,
    payments: &mut HashMap<OrderId, Payment>,
) -> Vec<Request> {
    let mut requests = Vec::new();
    for (cause, order_id, event) in events {
        let call = match event {
            Event::Payment(event) => {
                let payment = payments.entry(order_id).or_default();
                payment_call(order_id, payment, event)
            }
            Event::Shipment(event) => shipment_call(order_id, event),
        };
        if let Some(call) = call {
            requests.push(Request {
                cause,
                order_id,
                call,
            });
        }
    }
    requests
}

enum Event {
    Payment(PaymentEvent),
    Shipment(ShipmentEvent),
}

fn read(record: &Record) -> Option<(EventMeta, OrderId, Event)> {
    let decoded = (|| {
        let meta = record.meta().map_err(|e| e.to_string())?;
        let payload = record.payload.as_deref().ok_or("record has no payload")?;
        let order_id: OrderId = meta.aggregate_id.parse().map_err(|_| "not an order id")?;
        let event = match meta.aggregate_type {
            AggregateType::Payment => {
                Event::Payment(PaymentEvent::decode(&meta, payload).map_err(|e| e.to_string())?)
            }
            AggregateType::Shipment => {
                Event::Shipment(ShipmentEvent::decode(&meta, payload).map_err(|e| e.to_string())?)
            }
            _ => return Ok(None),
        };
        Ok::<_, String>(Some((meta, order_id, event)))
    })();
    match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            // The saga worker dead-letters the same record.
            tracing::warn!(topic = %record.topic, offset = record.offset, %error,
                "gateway skipped an unreadable record");
            None
        }
    }
}

fn payment_call(order_id: OrderId, payment: &mut Payment, event: PaymentEvent) -> Option<Call> {
    match event {
        PaymentEvent::PaymentAuthorizationRequested { amount, token } => {
            // Captures, voids and refunds need the token later; the first one stays.
            if !payment.known {
                payment.token = token.clone();
                payment.known = true;
                payment.changed = true;
            }
            let payment = PaymentRef {
                token,
                provider_ref: None,
                ..payment.reference(order_id)
            };
            Some(Call::Authorize { payment, amount })
        }
        PaymentEvent::PaymentCaptureRequested { amount } => Some(Call::Capture {
            payment: payment.reference(order_id),
            amount,
        }),
        // An authorization that arrives after the void was asked for is
        // released at once.
        PaymentEvent::PaymentAuthorized { provider_ref, .. } if payment.known => {
            payment.provider_ref = Some(provider_ref);
            payment.changed = true;
            payment.void_requested.then(|| Call::Void {
                payment: payment.reference(order_id),
                record: true,
            })
        }
        // Without an authorization there is nothing to record yet: the
        // payment stays void-pending until a late one shows up.
        PaymentEvent::PaymentVoidRequested => {
            if payment.known && !payment.void_requested {
                payment.void_requested = true;
                payment.changed = true;
            }
            Some(Call::Void {
                payment: payment.reference(order_id),
                record: payment.provider_ref.is_some(),
            })
        }
        PaymentEvent::PaymentRefundRequested { amount } => Some(Call::Refund {
            payment: payment.reference(order_id),
            amount,
        }),
        _ => None,
    }
}

fn shipment_call(order_id: OrderId, event: ShipmentEvent) -> Option<Call> {
    match event {
        ShipmentEvent::ShipmentRequested { address } => Some(Call::Schedule { order_id, address }),
        ShipmentEvent::ShipmentCancelled => Some(Call::Withdraw { order_id }),
        _ => None,
    }
}

async fn load(
    tx: &mut crate::store::Tx<'_>,
    orders: &[Uuid],
) -> Result<HashMap<OrderId, Payment>, sqlx::Error> {
    if orders.is_empty() {
        return Ok(HashMap::new());
    }
    let mut ids = orders.to_vec();
    ids.sort();
    ids.dedup();
    let rows: Vec<(Uuid, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT order_id, token, provider_ref, void_requested FROM gateway_payments
         WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, token, provider_ref, void_requested)| {
            let payment = Payment {
                token,
                provider_ref,
                void_requested,
                known: true,
                changed: false,
            };
            (OrderId::from_uuid(id), payment)
        })
        .collect())
}

async fn store(
    tx: &mut crate::store::Tx<'_>,
    payments: &HashMap<OrderId, Payment>,
) -> Result<(), sqlx::Error> {
    let changed: Vec<(&OrderId, &Payment)> = payments.iter().filter(|(_, p)| p.changed).collect();
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id.as_uuid()).collect();
    let tokens: Vec<&str> = changed.iter().map(|(_, p)| p.token.as_str()).collect();
    let refs: Vec<Option<&str>> = changed
        .iter()
        .map(|(_, p)| p.provider_ref.as_deref())
        .collect();
    let voids: Vec<bool> = changed.iter().map(|(_, p)| p.void_requested).collect();
    sqlx::query(
        "INSERT INTO gateway_payments (order_id, token, provider_ref, void_requested)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bool[]) ORDER BY 1
         ON CONFLICT (order_id) DO UPDATE
         SET provider_ref = EXCLUDED.provider_ref, void_requested = EXCLUDED.void_requested",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&refs)
    .bind(&voids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
