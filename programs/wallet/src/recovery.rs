//! Guardian recovery with a timelock: guardians (authorities holding `guardian`, normally passkeys)
//! approve a new owner passkey; once `guardian_threshold` approvals count, a clock of
//! `recovery_timelock` seconds runs; any live owner (or holder of `recovery_cancel`) may cancel
//! meanwhile; afterwards anyone may execute it: the old passkey owners are removed, every remaining
//! authority loses `manage` (and, if it held `manage`, `recovery_cancel`), the new passkey becomes the
//! owner. One pending recovery per wallet, in the config's extension area.
//!
//! Accounts of start / approve / withdraw / cancel: 0 config (writable), 1 authority (signer) or,
//! passkey-approved, the Instructions sysvar (guardians for start / approve / withdraw, an owner
//! or a `recovery_cancel` holder for cancel). Accounts of execute: 0 config (writable); nobody needs to sign.
//! Data after the tag: start: new owner key (33, compressed P-256); approve / withdraw:
//! `recovery_id u64, new owner key 33`; cancel / execute: `recovery_id u64`.

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::rt;
use crate::state::{
    parse_target, read_u64, same, AuthorityRecord, Config, KEY_FIELD_LEN, KIND_NONE, KIND_SECP256R1, MAX_AUTHORITIES,
    P256_KEY_LEN, PERMISSION_GUARDIAN, PERMISSION_MANAGE, PERMISSION_RECOVERY_CANCEL, PERMISSION_SPEND,
};
use crate::Request;

/// The new owner's key field from a 33-byte compressed P-256 key.
fn new_owner(bytes: &[u8]) -> Result<[u8; KEY_FIELD_LEN], Error> {
    if bytes.len() != P256_KEY_LEN || crate::state::all_zero(&bytes[1..]) {
        return Err(Error::InvalidInstructionData);
    }
    match parse_target(bytes)? {
        (KIND_SECP256R1, key) => Ok(key),
        _ => Err(Error::InvalidInstructionData),
    }
}

/// `recovery_id u64, new owner key 33`: refuses unless it names the pending request.
fn pending_request(config: &Config, body: &[u8]) -> Result<(), Error> {
    if body.len() != 8 + P256_KEY_LEN {
        return Err(Error::InvalidInstructionData);
    }
    let key = new_owner(&body[8..])?;
    pending_id(config, &body[..8])?;
    if !same(config.recovery_key(), &key) {
        return Err(Error::RecoveryMismatch);
    }
    Ok(())
}

/// `recovery_id u64`: refuses unless a request is pending with this id.
fn pending_id(config: &Config, body: &[u8]) -> Result<(), Error> {
    if body.len() != 8 {
        return Err(Error::InvalidInstructionData);
    }
    if !config.recovery_pending() {
        return Err(Error::NoRecoveryPending);
    }
    if read_u64(body, 0) != config.recovery_id() {
        return Err(Error::RecoveryMismatch);
    }
    Ok(())
}

/// 7 `recovery_start`: guardians open a request for a new owner passkey; their approvals count.
pub fn start(request: &Request) -> ProgramResult {
    let key = new_owner(request.body)?;
    let (mut config, now, who) = crate::authorized(request, crate::TAG_RECOVERY_START, PERMISSION_GUARDIAN)?;
    if config.guardian_threshold() == 0 {
        return Err(Error::RecoveryDisabled);
    }
    if config.recovery_pending() {
        return Err(Error::RecoveryPending);
    }
    if config.find_authority_of(KIND_SECP256R1, &key).is_some() {
        return Err(Error::AuthorityExists);
    }
    config.start_recovery(&key)?;
    config.set_recovery_approvals(who.slots);
    config.refresh_recovery_clock(now)
}

/// 8 `recovery_approve`: more guardians approve the pending request (each once).
pub fn approve(request: &Request) -> ProgramResult {
    let (mut config, now, who) = crate::authorized(request, crate::TAG_RECOVERY_APPROVE, PERMISSION_GUARDIAN)?;
    pending_request(&config, request.body)?;
    let approvals = config.recovery_approvals();
    if approvals & who.slots != 0 {
        return Err(Error::DuplicateApproval);
    }
    config.set_recovery_approvals(approvals | who.slots);
    config.refresh_recovery_clock(now)
}

/// 9 `recovery_withdraw`: guardians take their approval back; below the threshold the clock stops.
pub fn withdraw(request: &Request) -> ProgramResult {
    let (mut config, now, who) = crate::authorized(request, crate::TAG_RECOVERY_WITHDRAW, PERMISSION_GUARDIAN)?;
    pending_request(&config, request.body)?;
    let approvals = config.recovery_approvals();
    if approvals & who.slots != who.slots {
        return Err(Error::NothingToWithdraw);
    }
    config.set_recovery_approvals(approvals & !who.slots);
    config.refresh_recovery_clock(now)
}

/// 10 `recovery_cancel`: a live owner, or an authority holding `recovery_cancel`, ends the pending request.
pub fn cancel(request: &Request) -> ProgramResult {
    let (mut config, _, _) = crate::authorized(request, crate::TAG_RECOVERY_CANCEL, PERMISSION_RECOVERY_CANCEL)?;
    pending_id(&config, request.body)?;
    config.clear_recovery();
    Ok(())
}

/// 11 `recovery_execute`: anyone, once the clock has run out with enough approvals still counting.
pub fn execute(request: &Request) -> ProgramResult {
    let [config_account, ..] = request.accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    let mut config = checks::config(config_account, request.program_id)?;
    pending_id(&config, request.body)?;
    let now = rt::unix_timestamp()?;
    let threshold = config.guardian_threshold() as usize;
    let executes_at = config.recovery_executes_at();
    if threshold == 0 || executes_at == 0 || now < executes_at || config.counted_recovery_approvals(now) < threshold {
        return Err(Error::RecoveryNotReady);
    }
    let mut key = [0u8; KEY_FIELD_LEN];
    key.copy_from_slice(config.recovery_key());
    for slot in 0..crate::state::opaque(MAX_AUTHORITIES) {
        let kind = config.authority_kind(slot);
        let permissions = config.authority_permissions(slot);
        if kind == KIND_NONE || permissions & PERMISSION_MANAGE == 0 {
            continue;
        }
        // an old owner's keys lose the power to block the next recovery with ownership
        let kept = permissions & !(PERMISSION_MANAGE | PERMISSION_RECOVERY_CANCEL);
        if kind == KIND_SECP256R1 || kept == 0 {
            config.clear_authority(slot); // an old passkey owner, or an authority that only managed
        } else {
            config.set_authority_permissions(slot, kept); // e.g. the custody key: a capped spender
        }
    }
    if config.find_authority_of(KIND_SECP256R1, &key).is_some() {
        return Err(Error::AuthorityExists);
    }
    let slot = config.free_authority_slot().ok_or(Error::AuthorityTableFull)?;
    let record = AuthorityRecord { kind: KIND_SECP256R1, permissions: PERMISSION_MANAGE | PERMISSION_SPEND, key, expires_at: 0 };
    config.clear_authority(slot);
    config.set_authority(slot, &record);
    config.clear_recovery();
    // A guardian change the old owner proposed must not land after the wallet changed hands.
    config.clear_guardian_change();
    config.bump_nonce()
}
