//! Choosing the next step from the facts, deadlines, and the operator's
//! decisions.

use chrono::{DateTime, Utc};
use events::domain::{Money, PricedLine};

use super::StepRecord;
use super::state::{Compensation, CompensationKind, Phase, Reservation, Saga, Stage};
use super::{CANCELLED_BY_CUSTOMER, Input, Outgoing};

/// Capture attempts before the saga gives up and compensates.
pub const MAX_CAPTURE_ATTEMPTS: u32 = 4;
/// Deadline attempts of a forward step before it counts as failed.
pub const MAX_FORWARD_ATTEMPTS: u32 = 3;
/// Deadline attempts of a compensation stage (or of a step after the capture,
/// which cannot be undone by a rejection) before the saga parks.
pub const MAX_SETTLING_ATTEMPTS: u32 = 5;

impl Saga {
    /// Folds `input` into the saga and returns the commands to send.
    pub fn handle(&mut self, input: &Input, now: DateTime<Utc>) -> Vec<Outgoing> {
        let order_id = self.order.order_id;
        let learned = match input {
            Input::Catalog {
                sku,
                event,
                sequence,
            } => {
                if let Some(release) = self.stray_release(sku, event, *sequence) {
                    return vec![release];
                }
                self.facts.observe_catalog(order_id, sku, event)
            }
            Input::Order(event) => self.facts.observe_order(event),
            Input::Payment(event) => self.facts.observe_payment(event, self.captures),
            Input::Shipment(event) => self.facts.observe_shipment(event),
            Input::DeadlineFired => self.on_deadline(now),
            Input::OperatorRetry => self.operator_retry(now),
            Input::OperatorResolve { note } => self.operator_resolve(note, now),
        };
        if !learned {
            return vec![];
        }
        self.progress(now)
    }

    /// Moves through every step the facts already allow, then issues the
    /// current step's commands.
    pub(super) fn progress(&mut self, now: DateTime<Utc>) -> Vec<Outgoing> {
        // Each transition moves strictly forward through a finite set of
        // steps, so the bound is never reached; it guards against a cycle.
        for _ in 0..32 {
            match self.next_phase() {
                Some(next) => self.enter(next, now),
                None => break,
            }
        }
        self.issue()
    }

    fn next_phase(&self) -> Option<Phase> {
        let facts = &self.facts;
        let cancel = facts.order.cancellation_requested;
        match &self.phase {
            Phase::ReservingStock => self.after_reservations(),
            Phase::AuthorizingAndScheduling => self.before_capture(),
            Phase::CapturingPayment | Phase::AwaitingCaptureRetry if facts.payment.captured => {
                Some(Phase::CommittingAndConfirming)
            }
            Phase::CapturingPayment if facts.payment.failed_capture >= self.captures => {
                self.after_capture_failure()
            }
            Phase::AwaitingCaptureRetry if cancel => reject(CANCELLED_BY_CUSTOMER.to_owned()),
            Phase::CommittingAndConfirming => {
                let committed =
                    |l: &super::state::LineFacts| l.reservation == Reservation::Committed;
                let done = facts.lines.iter().all(committed)
                    && facts.order.confirmed
                    && facts.shipment.released;
                done.then_some(Phase::Completed {
                    cancellation_moot: false,
                })
            }
            Phase::Completed { cancellation_moot } => self.after_completion(*cancellation_moot),
            Phase::Compensating(compensation) => self.next_compensation(compensation),
            Phase::NeedsAttention { parked, .. } => self.unpark(parked),
            _ => None,
        }
    }

    /// Pricing, authorizing and scheduling: a failure or the customer's
    /// cancellation turns into a rejection, since nothing was captured. The
    /// capture (the pivot) waits for all three, and the reservations came
    /// before them, so nothing is captured before the stock is reserved and
    /// the shipment scheduled.
    fn before_capture(&self) -> Option<Phase> {
        let facts = &self.facts;
        let failure = if facts.payment.declined {
            Some("payment_declined")
        } else if facts.shipment.refused {
            Some("shipment_refused")
        } else if facts.order.cancellation_requested {
            Some(CANCELLED_BY_CUSTOMER)
        } else {
            None
        };
        if let Some(reason) = failure {
            return reject(reason.to_owned());
        }
        let ready = facts.order.priced && facts.payment.authorized && facts.shipment.scheduled;
        ready.then_some(Phase::CapturingPayment)
    }

    /// A completed saga still undoes itself when the customer cancels before
    /// the parcel leaves.
    fn after_completion(&self, cancellation_moot: bool) -> Option<Phase> {
        let facts = &self.facts;
        let too_late = cancellation_moot || facts.shipment.dispatched || facts.order.shipped;
        (facts.order.cancellation_requested && !too_late).then(|| {
            Phase::Compensating(Compensation {
                kind: CompensationKind::Cancel,
                reason: CANCELLED_BY_CUSTOMER.to_owned(),
                stage: Stage::CancelShipment,
            })
        })
    }

    /// A late answer that lets the parked step move on resumes the saga: the
    /// operator is needed only while nothing is happening.
    fn unpark(&self, parked: &Phase) -> Option<Phase> {
        let mut probe = self.clone();
        probe.phase = parked.clone();
        probe
            .next_phase()
            .filter(|next| !matches!(next, Phase::NeedsAttention { .. }))
    }

    /// A fresh saga refused before its first command: no line is or will be
    /// reserved (none was asked), so only the order is left to close.
    pub(super) fn refuse(&mut self, reason: &str, now: DateTime<Utc>) -> Vec<Outgoing> {
        for line in &mut self.facts.lines {
            line.reservation = Reservation::Released;
        }
        if let Some(rejecting) = reject(reason.to_owned()) {
            self.enter(rejecting, now);
        }
        self.progress(now)
    }

    fn after_reservations(&self) -> Option<Phase> {
        let lines = &self.facts.lines;
        for line in lines {
            if let Reservation::Rejected { reason } = line.reservation {
                return reject(format!("{reason}: {}", line.sku));
            }
        }
        if self.facts.order.cancellation_requested {
            return reject(CANCELLED_BY_CUSTOMER.to_owned());
        }
        let all_reserved = lines
            .iter()
            .all(|line| matches!(line.reservation, Reservation::Reserved { .. }));
        if !all_reserved {
            return None;
        }
        match self.pricing() {
            Ok(_) => Some(Phase::AuthorizingAndScheduling),
            Err(reason) => reject(reason),
        }
    }

    /// A failed capture is retried after a backoff, unless the attempts are
    /// used up or the customer cancelled meanwhile.
    fn after_capture_failure(&self) -> Option<Phase> {
        if self.facts.order.cancellation_requested {
            reject(CANCELLED_BY_CUSTOMER.to_owned())
        } else if self.captures >= MAX_CAPTURE_ATTEMPTS {
            reject("capture_failed".to_owned())
        } else {
            Some(Phase::AwaitingCaptureRetry)
        }
    }

    /// The priced lines and their checked total, from the reservations.
    pub(super) fn pricing(&self) -> Result<(Vec<PricedLine>, Money), String> {
        let currency = self.order.currency;
        let mut priced = Vec::with_capacity(self.facts.lines.len());
        for line in &self.facts.lines {
            let Reservation::Reserved { unit_price } = line.reservation else {
                return Err(format!("not_reserved: {}", line.sku));
            };
            if unit_price.currency != currency {
                return Err(format!("currency_mismatch: {}", line.sku));
            }
            priced.push(PricedLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price,
            });
        }
        let totals: Result<Vec<Money>, _> = priced.iter().map(PricedLine::line_total).collect();
        let total = totals
            .and_then(|totals| Money::checked_sum(currency, totals))
            .map_err(|_| "total_overflow".to_owned())?;
        Ok((priced, total))
    }

    fn enter(&mut self, next: Phase, now: DateTime<Utc>) {
        let outcome = match (&self.phase, &next) {
            (_, Phase::NeedsAttention { reason, .. }) => format!("parked: {reason}"),
            (Phase::Compensating(_), Phase::Completed { .. }) => {
                "abandoned: the parcel was dispatched".to_owned()
            }
            (Phase::Compensating(_), _) => "succeeded".to_owned(),
            (_, Phase::Compensating(c)) => format!("compensating: {}", c.reason),
            _ => "succeeded".to_owned(),
        };
        if let Phase::Compensating(c) = &next {
            self.last_error.get_or_insert_with(|| c.reason.clone());
        }
        if let Phase::NeedsAttention { reason, .. } = &next {
            self.last_error = Some(reason.clone());
        }
        if next == Phase::AuthorizingAndScheduling {
            self.total = self.pricing().ok().map(|(_, total)| total);
        }
        if next == Phase::CapturingPayment {
            self.captures += 1;
        }
        self.close_step(outcome);
        let backoff_round = match next {
            Phase::AwaitingCaptureRetry => self.captures,
            _ => 1,
        };
        self.deadline = next.timeout(backoff_round, self.pace).map(|t| now + t);
        let terminal = next.timeout(1, self.pace).is_none();
        self.history.push(StepRecord {
            step: next.name().to_owned(),
            started_at: now,
            attempts: 1,
            outcome: terminal.then(|| "reached".to_owned()),
        });
        self.phase = next;
        self.attempt = 1;
        self.attempt_base = 0;
        self.issued.clear();
    }

    fn close_step(&mut self, outcome: String) {
        if let Some(last) = self.history.last_mut() {
            last.outcome.get_or_insert(outcome);
        }
    }

    /// A deadline that passed: retry the step with the next attempt, or give
    /// up on it. Returns false for a stale firing.
    fn on_deadline(&mut self, now: DateTime<Utc>) -> bool {
        if self.deadline.is_none_or(|deadline| now < deadline) {
            return false;
        }
        let name = self.phase.name();
        let give_up = match &self.phase {
            Phase::AwaitingCaptureRetry => Some(Phase::CapturingPayment),
            Phase::AuthorizingAndScheduling => self.authorization_deadline(),
            Phase::ReservingStock if self.attempts_used() >= MAX_FORWARD_ATTEMPTS => {
                reject(format!("{name}_timed_out"))
            }
            Phase::CapturingPayment if self.attempts_used() >= MAX_FORWARD_ATTEMPTS => {
                Some(self.park("no answer to the payment capture".to_owned()))
            }
            Phase::CommittingAndConfirming if self.attempts_used() >= MAX_SETTLING_ATTEMPTS => {
                Some(self.park(format!("{name} did not complete after the capture")))
            }
            Phase::Compensating(c) if self.attempts_used() >= MAX_SETTLING_ATTEMPTS => {
                let waiting = self.compensation_wait(c);
                Some(self.park(format!("{name} stalled, waiting for {waiting}")))
            }
            _ => None,
        };
        match give_up {
            Some(next) => self.enter(next, now),
            None => self.retry(self.attempt + 1, now),
        }
        true
    }

    /// The provider gets one deadline to answer the authorization; pricing
    /// and booking are retried like any forward step. `None` retries.
    fn authorization_deadline(&self) -> Option<Phase> {
        let facts = &self.facts;
        if !facts.payment.authorized {
            reject("payment_timed_out".to_owned())
        } else if self.attempts_used() < MAX_FORWARD_ATTEMPTS {
            None
        } else if !facts.shipment.scheduled {
            reject("scheduling_shipment_timed_out".to_owned())
        } else {
            reject("pricing_order_timed_out".to_owned())
        }
    }

    /// Re-issues the current step's commands under `attempt`.
    fn retry(&mut self, attempt: u32, now: DateTime<Utc>) {
        self.attempt = attempt;
        self.issued.clear();
        self.deadline = self.phase.timeout(attempt, self.pace).map(|t| now + t);
        if let Some(last) = self.history.last_mut() {
            last.attempts = attempt;
        }
    }

    fn attempts_used(&self) -> u32 {
        self.attempt.saturating_sub(self.attempt_base)
    }

    fn park(&self, reason: String) -> Phase {
        Phase::NeedsAttention {
            reason,
            parked: Box::new(self.phase.clone()),
            parked_attempt: self.attempt,
        }
    }

    /// Resumes the parked step with a fresh attempt, so its commands get new
    /// ids and the processors decide them again.
    fn operator_retry(&mut self, now: DateTime<Utc>) -> bool {
        let Phase::NeedsAttention {
            parked,
            parked_attempt,
            ..
        } = &self.phase
        else {
            return false;
        };
        let (parked, attempt) = ((**parked).clone(), parked_attempt + 1);
        self.enter(parked, now);
        self.retry(attempt, now);
        self.attempt_base = attempt - 1;
        true
    }

    fn operator_resolve(&mut self, note: &str, now: DateTime<Utc>) -> bool {
        if !matches!(self.phase, Phase::NeedsAttention { .. }) {
            return false;
        }
        let note = note.to_owned();
        self.enter(Phase::Resolved { note }, now);
        true
    }
}

/// Compensation before the capture, ending in RejectOrder with `reason`.
fn reject(reason: String) -> Option<Phase> {
    Some(Phase::Compensating(Compensation {
        kind: CompensationKind::Reject,
        reason,
        stage: Stage::CancelShipment,
    }))
}
