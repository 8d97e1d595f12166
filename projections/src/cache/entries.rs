//! What an entry holds: the documents' fields and versions as written, and
//! an entry as readers get it back.

use events::AggregateType;
use uuid::Uuid;

use super::Cache;
use crate::documents::{ItemDocument, OrderDocument, Unbuilt, Unplaced};

/// One document ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The version of every stream the document reflects.
    pub versions: Vec<(&'static str, i64)>,
    pub fields: Vec<(&'static str, String)>,
}

/// A cached document as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub body: String,
    pub owner: Option<String>,
    /// The HMAC of key, owner and body (see the module documentation).
    pub signature: Option<String>,
    /// The sequence the body reflects of each feeding stream.
    pub versions: Vec<(AggregateType, i64)>,
}

impl Cached {
    /// The sequence of `stream` the body reflects (0 when it has none).
    pub fn version(&self, stream: AggregateType) -> i64 {
        self.versions
            .iter()
            .find(|(s, _)| *s == stream)
            .map_or(0, |(_, v)| *v)
    }
}

impl Cache {
    /// The fields of an entry `key` that `owner` may read: body, owner and
    /// (with a signing key) their signature.
    pub fn owned_fields(
        &self,
        key: &str,
        body: String,
        owner: String,
    ) -> Vec<(&'static str, String)> {
        let mut fields = Vec::with_capacity(3);
        if let Some(signing) = &self.signing {
            let parts: [&[u8]; 3] = [key.as_bytes(), owner.as_bytes(), body.as_bytes()];
            fields.push(("sig", signing.sign(&parts)));
        }
        fields.push(("body", body));
        fields.push(("owner", owner));
        fields
    }

    /// True when the owner of the entry `key` verifies.
    pub(super) fn owner_verifies(&self, key: &str, entry: &Cached) -> bool {
        let (Some(owner), Some(signing)) = (&entry.owner, &self.signing) else {
            return entry.owner.is_none();
        };
        let parts: [&[u8]; 3] = [key.as_bytes(), owner.as_bytes(), entry.body.as_bytes()];
        entry
            .signature
            .as_deref()
            .is_some_and(|sig| signing.verify(&parts, sig))
    }

    pub fn order_entry(&self, document: &OrderDocument) -> Result<Entry, serde_json::Error> {
        Ok(self.order_entry_of(document, serde_json::to_string(document)?))
    }

    /// [`order_entry`](Self::order_entry) with the document's JSON already
    /// encoded as `body`.
    pub fn order_entry_of(&self, document: &OrderDocument, body: String) -> Entry {
        let key = self.order_key(document.order_id);
        let fields = self.owned_fields(&key, body, document.customer_id.clone());
        Entry {
            key,
            versions: named(document.versions()),
            fields,
        }
    }

    /// An order's versions without a body (see [`Unplaced`]): it never
    /// replaces a body (its order version is 0), but one that is newer in a
    /// stream takes the body of an entry that does not reflect it away.
    pub fn unplaced_entry(&self, unplaced: &Unplaced) -> Entry {
        self.versions_entry(unplaced.order_id, unplaced.versions())
    }

    /// An order's versions without a body (see [`Unbuilt`]): it takes the
    /// body of an entry older in one of them away.
    pub fn unbuilt_entry(&self, unbuilt: &Unbuilt) -> Entry {
        self.versions_entry(unbuilt.order_id, unbuilt.versions)
    }

    fn versions_entry(&self, order_id: Uuid, versions: [(AggregateType, i64); 3]) -> Entry {
        Entry {
            key: self.order_key(order_id),
            versions: named(versions),
            fields: Vec::new(),
        }
    }

    pub fn item_entry(&self, document: &ItemDocument) -> Result<Entry, serde_json::Error> {
        Ok(Entry {
            key: self.item_key(&document.sku),
            versions: vec![(AggregateType::CatalogItem.as_str(), document.version)],
            fields: vec![("body", serde_json::to_string(document)?)],
        })
    }
}

/// An order's stream versions under the names the entry's fields carry.
fn named(versions: [(AggregateType, i64); 3]) -> Vec<(&'static str, i64)> {
    versions
        .iter()
        .map(|(stream, version)| (stream.as_str(), *version))
        .collect()
}

/// The streams whose versions entries carry.
pub(super) const CACHED_STREAMS: [AggregateType; 4] = [
    AggregateType::Order,
    AggregateType::Payment,
    AggregateType::Shipment,
    AggregateType::CatalogItem,
];

/// An entry read back (`body`, `owner`, `sig`, then the [`CACHED_STREAMS`]' versions),
/// or `None` when absent, without a body, or not written by [`Cache::put`].
pub(super) fn cached(values: Vec<Option<String>>) -> Option<Cached> {
    let mut values = values.into_iter();
    let body = values.next().flatten()?;
    let owner = values.next().flatten();
    let signature = values.next().flatten();
    let versions = CACHED_STREAMS
        .iter()
        .zip(values)
        .filter_map(|(stream, value)| Some((*stream, value?.parse().ok()?)))
        .collect();
    Some(Cached {
        body,
        owner,
        signature,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_with_their_versions_and_owner() {
        let some = |v: &str| Some(v.to_owned());
        let values = vec![
            some("{}"),
            some("alice"),
            some("sig"),
            some("3"),
            some("2"),
            None,
            None,
        ];
        let entry = cached(values).unwrap();
        assert_eq!(entry.owner.as_deref(), Some("alice"));
        assert_eq!(
            (
                entry.version(AggregateType::Order),
                entry.version(AggregateType::Payment),
                entry.version(AggregateType::Shipment)
            ),
            (3, 2, 0)
        );
        assert_eq!(cached(vec![None; 7]), None, "absent");
        assert_eq!(
            cached(vec![None, None, None, some("3"), None, None, None]),
            None,
            "no body"
        );
    }
}
