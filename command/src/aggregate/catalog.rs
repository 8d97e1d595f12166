//! The CatalogItem aggregate: price, stock on hand and one reservation per
//! order.
//!
//! Available stock is `on_hand - reserved` and a reservation is only granted
//! when it fits, so available never drops below zero however many orders race
//! for the same item: the single writer per SKU serializes them.
//!
//! The item remembers only its most recent committed orders (`recent`), so
//! its state stays small however many orders it served.

use std::collections::BTreeMap;

use events::domain::catalog::{
    CatalogCommand, CatalogEvent, CatalogRejection, MAX_ITEM_NAME_CHARS, MAX_UNIT_PRICE_MINOR,
    ReservationRejectedReason,
};
use events::domain::ids::OrderId;
use events::domain::money::{Currency, Money};
use events::domain::text::is_valid_text;

use super::Aggregate;

mod recent;
pub use recent::{HORIZON as COMMITTED_HORIZON, RecentCommits};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_horizon;

/// State of one catalog item, keyed by SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CatalogItem {
    details: Option<ItemDetails>,
    on_hand: u32,
    /// Cached sum of `reservations`, kept in step by `evolve`.
    reserved: u32,
    reservations: BTreeMap<OrderId, u32>,
    /// The most recent orders whose stock was committed, remembered so
    /// that a repeated CommitStock or ReserveStock inside the horizon is
    /// recognized as already applied (older ones: see `recent`).
    #[serde(default)]
    committed: RecentCommits,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ItemDetails {
    name: String,
    unit_price: Money,
}

impl CatalogItem {
    /// False until `ItemCreated`; a rejected reservation for an unknown SKU
    /// does not create the item.
    pub fn exists(&self) -> bool {
        self.details.is_some()
    }

    pub fn name(&self) -> Option<&str> {
        self.details.as_ref().map(|d| d.name.as_str())
    }

    pub fn unit_price(&self) -> Option<Money> {
        self.details.as_ref().map(|d| d.unit_price)
    }

    pub fn currency(&self) -> Option<Currency> {
        self.unit_price().map(|price| price.currency)
    }

    /// Units physically in stock, including reserved ones.
    pub fn on_hand(&self) -> u32 {
        self.on_hand
    }

    /// Units held by live reservations.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }

    /// Units that a new reservation can still take.
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved)
    }

    /// Units reserved for `order_id`, if it holds a live reservation.
    pub fn reservation(&self, order_id: &OrderId) -> Option<u32> {
        self.reservations.get(order_id).copied()
    }

    /// Live reservations in order id order.
    pub fn reservations(&self) -> impl Iterator<Item = (OrderId, u32)> + '_ {
        self.reservations.iter().map(|(id, qty)| (*id, *qty))
    }

    /// Whether `order_id`'s commit is among the remembered ones.
    pub fn is_committed(&self, order_id: &OrderId) -> bool {
        self.committed.contains(order_id)
    }

    /// The committed orders remembered, at most `COMMITTED_HORIZON`.
    pub fn committed(&self) -> &RecentCommits {
        &self.committed
    }

    fn details(&self) -> Result<&ItemDetails, CatalogRejection> {
        self.details.as_ref().ok_or(CatalogRejection::NotFound)
    }

    fn create(
        &self,
        name: &str,
        unit_price: Money,
        initial_stock: u32,
    ) -> Result<Vec<CatalogEvent>, CatalogRejection> {
        if !is_valid_text(name, MAX_ITEM_NAME_CHARS) {
            return Err(CatalogRejection::InvalidName);
        }
        check_price(unit_price)?;
        if self.exists() {
            return Err(CatalogRejection::AlreadyExists);
        }
        Ok(vec![CatalogEvent::ItemCreated {
            name: name.to_owned(),
            unit_price,
            initial_stock,
        }])
    }

    fn restock(&self, quantity: u32) -> Result<Vec<CatalogEvent>, CatalogRejection> {
        check_quantity(quantity)?;
        self.details()?;
        if self.on_hand.checked_add(quantity).is_none() {
            return Err(CatalogRejection::StockOverflow { quantity });
        }
        Ok(vec![CatalogEvent::Restocked { quantity }])
    }

    fn change_price(&self, unit_price: Money) -> Result<Vec<CatalogEvent>, CatalogRejection> {
        check_price(unit_price)?;
        let current = self.details()?.unit_price;
        if current.currency != unit_price.currency {
            return Err(CatalogRejection::CurrencyMismatch {
                expected: current.currency,
                actual: unit_price.currency,
            });
        }
        if current == unit_price {
            return Ok(vec![]);
        }
        Ok(vec![CatalogEvent::PriceChanged { unit_price }])
    }

    /// A reservation that cannot be granted is recorded as an event, because
    /// the saga waiting for it only reads the event topics.
    fn reserve(
        &self,
        order_id: OrderId,
        quantity: u32,
    ) -> Result<Vec<CatalogEvent>, CatalogRejection> {
        check_quantity(quantity)?;
        let rejected = |reason, available| CatalogEvent::StockReservationRejected {
            order_id,
            quantity,
            available,
            reason,
        };
        let Some(details) = &self.details else {
            return Ok(vec![rejected(ReservationRejectedReason::UnknownSku, 0)]);
        };
        if self.reservations.contains_key(&order_id) || self.committed.contains(&order_id) {
            return Ok(vec![]);
        }
        let available = self.available();
        if quantity > available {
            let reason = ReservationRejectedReason::InsufficientStock;
            return Ok(vec![rejected(reason, available)]);
        }
        Ok(vec![CatalogEvent::StockReserved {
            order_id,
            quantity,
            unit_price: details.unit_price,
        }])
    }

    /// Releasing is a compensation, so it succeeds whenever its goal already
    /// holds: no reservation for the order, even on an unknown SKU.
    fn release(&self, order_id: OrderId) -> Vec<CatalogEvent> {
        match self.reservation(&order_id) {
            Some(quantity) => vec![CatalogEvent::StockReleased { order_id, quantity }],
            None => vec![],
        }
    }

    fn commit(&self, order_id: OrderId) -> Result<Vec<CatalogEvent>, CatalogRejection> {
        self.details()?;
        if self.committed.contains(&order_id) {
            return Ok(vec![]);
        }
        match self.reservation(&order_id) {
            Some(quantity) => Ok(vec![CatalogEvent::StockCommitted { order_id, quantity }]),
            None => Err(CatalogRejection::NoReservation { order_id }),
        }
    }
}

fn check_price(unit_price: Money) -> Result<(), CatalogRejection> {
    if unit_price.is_positive() && unit_price.minor <= MAX_UNIT_PRICE_MINOR {
        Ok(())
    } else {
        Err(CatalogRejection::InvalidPrice { unit_price })
    }
}

fn check_quantity(quantity: u32) -> Result<(), CatalogRejection> {
    if quantity > 0 {
        Ok(())
    } else {
        Err(CatalogRejection::InvalidQuantity { quantity })
    }
}

impl Aggregate for CatalogItem {
    type Command = CatalogCommand;
    type Event = CatalogEvent;
    type Rejection = CatalogRejection;

    fn decide(&self, command: &CatalogCommand) -> Result<Vec<CatalogEvent>, CatalogRejection> {
        match command {
            CatalogCommand::CreateItem {
                name,
                unit_price,
                initial_stock,
            } => self.create(name, *unit_price, *initial_stock),
            CatalogCommand::Restock { quantity } => self.restock(*quantity),
            CatalogCommand::ChangePrice { unit_price } => self.change_price(*unit_price),
            CatalogCommand::ReserveStock { order_id, quantity } => {
                self.reserve(*order_id, *quantity)
            }
            CatalogCommand::ReleaseStock { order_id } => Ok(self.release(*order_id)),
            CatalogCommand::CommitStock { order_id } => self.commit(*order_id),
        }
    }

    fn evolve(mut self, event: &CatalogEvent) -> Self {
        match event {
            CatalogEvent::ItemCreated {
                name,
                unit_price,
                initial_stock,
            } => {
                self.details = Some(ItemDetails {
                    name: name.clone(),
                    unit_price: *unit_price,
                });
                self.on_hand = *initial_stock;
            }
            CatalogEvent::Restocked { quantity } => {
                self.on_hand = self.on_hand.saturating_add(*quantity);
            }
            CatalogEvent::PriceChanged { unit_price } => {
                if let Some(details) = &mut self.details {
                    details.unit_price = *unit_price;
                }
            }
            CatalogEvent::StockReserved {
                order_id, quantity, ..
            } => {
                let replaced = self.reservations.insert(*order_id, *quantity);
                self.reserved = self
                    .reserved
                    .saturating_sub(replaced.unwrap_or(0))
                    .saturating_add(*quantity);
            }
            CatalogEvent::StockReservationRejected { .. } => {}
            CatalogEvent::StockReleased { order_id, quantity } => {
                self.reservations.remove(order_id);
                self.reserved = self.reserved.saturating_sub(*quantity);
            }
            CatalogEvent::StockCommitted { order_id, quantity } => {
                self.reservations.remove(order_id);
                self.reserved = self.reserved.saturating_sub(*quantity);
                self.on_hand = self.on_hand.saturating_sub(*quantity);
                self.committed.remember(*order_id);
            }
        }
        self
    }
}
