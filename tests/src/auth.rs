//! Who a test acts as: the principals of its commands and the bearer tokens
//! the in-process services accept (signed with [`crate::JWT_SECRET`]).

use std::time::Duration;

use events::command::{Principal, Role};

pub fn who(role: Role, subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        role,
    }
}

/// The principal of an operator's commands in tests.
pub fn operator() -> Principal {
    who(Role::Admin, "ops")
}

/// The principal of the saga worker's commands.
pub fn system() -> Principal {
    who(Role::System, "saga")
}

/// A bearer token of `subject` in `role`, valid for an hour.
pub fn token(role: Role, subject: &str) -> String {
    events::auth::mint_hs256(
        crate::JWT_SECRET.as_bytes(),
        &who(role, subject),
        Duration::from_secs(3600),
    )
    .expect("minting a token")
}
