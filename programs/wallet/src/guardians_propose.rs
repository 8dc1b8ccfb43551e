//! 12 `guardians_propose`: an owner (`manage`) proposes the wallet's next guardian set and
//! threshold. The proposal (SHA-256 of the body, `effective_at = now + guardian_change_delay`) is
//! stored in the config's extension area, replacing any earlier one; `guardians_apply` makes it
//! the wallet's guardian set once the delay has passed.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag: a guardian set body (`guardian_set.rs`).

use crate::error::{Error, ProgramResult};
use crate::guardian_set::GuardianSet;
use crate::rt;
use crate::Request;

#[inline(never)]
pub fn process(request: &Request) -> ProgramResult {
    let set = GuardianSet::parse(request.body)?;
    let (mut config, now) = crate::manage(request, crate::TAG_GUARDIANS_PROPOSE)?;
    set.check_against(&config)?;
    let hash = rt::sha256(&[request.body])?;
    let delay = config.guardian_change_delay() as i64;
    let effective_at = now.checked_add(delay).ok_or(Error::ArithmeticOverflow)?;
    config.set_guardian_change(&hash, effective_at);
    Ok(())
}
