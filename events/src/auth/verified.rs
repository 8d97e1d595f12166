//! Tokens that verified recently, so a client that sends the same bearer
//! token with every request pays for its signature check once.
//!
//! Checking an HS256 signature (HMAC-SHA-256 over the base64 text) and
//! decoding the claims was the query API's most expensive function on a
//! cache hit, and a client sends the same token with every request. An
//! entry is keyed by the whole token text, signature included, so only the
//! very token that verified is answered from here, and it is answered only
//! until its `exp` (with the same clock-skew allowance the full check
//! gives). Only tokens that verified are remembered, so a flood of forged
//! tokens can neither fill the cache nor be answered from it; the keys do
//! not change while a service runs, so a verdict cannot go stale but by
//! time. The cache is sharded and a lookup takes a shard's read lock
//! only, so request threads do not wait for one another here.

use quick_cache::sync::Cache;

use crate::command::Principal;

/// Most tokens remembered (about 300 bytes each).
const CAPACITY: usize = 4_096;

/// The verified tokens; the least used are forgotten first.
pub(super) struct VerifiedTokens {
    tokens: Cache<Box<str>, Verified>,
}

#[derive(Clone)]
struct Verified {
    principal: Principal,
    /// The token's `exp` plus the clock-skew allowance.
    valid_until: u64,
}

impl VerifiedTokens {
    pub(super) fn new() -> VerifiedTokens {
        VerifiedTokens {
            tokens: Cache::new(CAPACITY),
        }
    }

    /// The caller of a token that verified before and is still valid at `now`.
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Principal> {
        let verified = self.tokens.get(token)?;
        if now <= verified.valid_until {
            return Some(verified.principal);
        }
        self.tokens.remove(token);
        None
    }

    /// Remembers a token that verified, until `valid_until`.
    pub(super) fn insert(&self, token: &str, principal: Principal, valid_until: u64) {
        let verified = Verified {
            principal,
            valid_until,
        };
        self.tokens.insert(token.into(), verified);
    }
}
