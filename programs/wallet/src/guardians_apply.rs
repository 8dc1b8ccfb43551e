//! 13 `guardians_apply`: anyone (the relayer's fee payer) applies the pending guardian change once
//! its delay has passed. The guardian set becomes exactly the listed keys: guardian-only slots not
//! listed are removed (with their recovery approvals, as `remove_authority` does), authorities that
//! hold `guardian` with other bits lose the `guardian` bit (and their approval), missing keys are
//! added as kind 2 with `guardian` only, never expiring; `guardian_threshold` is set; the proposal
//! is cleared; the recovery clock is re-decided ("The clock" in the doc).
//!
//! Accounts: 0 config (writable); nobody needs to sign. Data after the tag: the proposed body,
//! byte for byte (its SHA-256 must be the stored one).

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::guardian_set::GuardianSet;
use crate::rt;
use crate::state::{opaque, same, KIND_NONE, KIND_SECP256R1, MAX_AUTHORITIES, PERMISSION_GUARDIAN};
use crate::Request;

#[inline(never)]
pub fn process(request: &Request) -> ProgramResult {
    let [config_account, ..] = request.accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    let set = GuardianSet::parse(request.body)?;
    let mut config = checks::config(config_account, request.program_id)?;
    if !config.guardian_change_pending() {
        return Err(Error::NoGuardianChangePending);
    }
    let hash = rt::sha256(&[request.body])?;
    if !same(config.guardian_change_hash(), &hash) {
        return Err(Error::GuardianChangeMismatch);
    }
    let now = rt::unix_timestamp()?;
    if now < config.guardian_change_effective_at() {
        return Err(Error::GuardianChangeNotReady);
    }
    // The wallet may have changed since the proposal (an owner added an authority): check again.
    set.check_against(&config)?;
    for slot in 0..opaque(MAX_AUTHORITIES) {
        let kind = config.authority_kind(slot);
        let permissions = config.authority_permissions(slot);
        if kind == KIND_NONE || permissions & PERMISSION_GUARDIAN == 0 {
            continue;
        }
        if permissions != PERMISSION_GUARDIAN {
            config.set_authority_permissions(slot, permissions & !PERMISSION_GUARDIAN);
            config.clear_recovery_approval(slot);
        } else if kind != KIND_SECP256R1 || !set.contains(config.authority_key(slot)) {
            config.clear_authority(slot);
        }
    }
    for index in 0..opaque(set.count()) {
        let key = set.raw(index);
        let slot = match config.find_passkey(key) {
            Some(slot) => slot,
            None => config.free_authority_slot().ok_or(Error::AuthorityTableFull)?,
        };
        config.set_passkey_guardian(slot, key);
    }
    config.set_guardian_threshold(set.threshold);
    config.clear_guardian_change();
    config.refresh_recovery_clock(now)
}
