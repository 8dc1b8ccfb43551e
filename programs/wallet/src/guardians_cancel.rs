//! 14 `guardians_cancel`: an owner (`manage`) drops the pending guardian change.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag: the pending change's hash (32 bytes, SHA-256 of the
//! proposed body): an approval cancels exactly the proposal its owner saw.

use crate::error::{Error, ProgramResult};
use crate::state::same;
use crate::Request;

const BODY_LEN: usize = 32;

#[inline(never)]
pub fn process(request: &Request) -> ProgramResult {
    if request.body.len() != BODY_LEN {
        return Err(Error::InvalidInstructionData);
    }
    let (mut config, _) = crate::manage(request, crate::TAG_GUARDIANS_CANCEL)?;
    if !config.guardian_change_pending() {
        return Err(Error::NoGuardianChangePending);
    }
    if !same(config.guardian_change_hash(), request.body) {
        return Err(Error::GuardianChangeMismatch);
    }
    config.clear_guardian_change();
    Ok(())
}
