//! `set_permissions`: changes an authority's permission bits (e.g. drops the custody key's
//! `manage` when the wallet enters protected mode). Refused when no live authority holding
//! `manage` would remain.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag: `permissions u8` (non-zero, known bits), then the
//! target key (32 bytes Ed25519 or 33 bytes compressed P-256).

use crate::error::{Error, ProgramResult};
use crate::Request;
use crate::state::{parse_target, PERMISSIONS_KNOWN};

pub fn process(request: &Request) -> ProgramResult {
    let body = request.body;
    let (&permissions, target_bytes) = body.split_first().ok_or(Error::InvalidInstructionData)?;
    if permissions == 0 || permissions & !PERMISSIONS_KNOWN != 0 {
        return Err(Error::InvalidInstructionData);
    }
    let (kind, target) = parse_target(target_bytes)?;
    let (mut config, now) = crate::manage(request, crate::TAG_SET_PERMISSIONS)?;
    let slot = config.find_authority_of(kind, &target).ok_or(Error::AuthorityNotFound)?;
    config.set_authority_permissions(slot, permissions);
    if config.count_managers(now, None) == 0 {
        return Err(Error::LastOwner);
    }
    config.refresh_recovery_clock(now)
}
