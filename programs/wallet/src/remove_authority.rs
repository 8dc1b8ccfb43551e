//! `remove_authority`: removes an authority and its limits. The last live authority holding
//! `manage` cannot be removed.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag: the key to remove (32 bytes Ed25519, 33 bytes
//! compressed P-256).

use crate::error::{Error, ProgramResult};
use crate::Request;
use crate::state::parse_target;

pub fn process(request: &Request) -> ProgramResult {
    let body = request.body;
    let (kind, target) = parse_target(body)?;
    let (mut config, now) = crate::manage(request, crate::TAG_REMOVE_AUTHORITY)?;
    let slot = config.find_authority_of(kind, &target).ok_or(Error::AuthorityNotFound)?;
    if config.count_managers(now, Some(slot)) == 0 {
        return Err(Error::LastOwner);
    }
    config.clear_authority(slot);
    config.refresh_recovery_clock(now)
}
