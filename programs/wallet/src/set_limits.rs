//! `set_limits`: sets (adds, changes or deletes) one authority's limit for one mint.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar.
//! Data after the tag: the target authority's key (32 bytes Ed25519 or 33 bytes compressed
//! P-256), then a limit body (56 bytes: `mint 32, per_transaction_cap u64, period_cap u64,
//! period_seconds u64`). Both caps 0 deletes the limit. A new limit starts its period now with
//! nothing spent; a changed limit keeps its period start and spent counter.

use crate::error::{Error, ProgramResult};
use crate::Request;
use crate::state::{parse_target, LimitBody, LIMIT_BODY_LEN};

pub fn process(request: &Request) -> ProgramResult {
    let body = request.body;
    if body.len() < LIMIT_BODY_LEN {
        return Err(Error::InvalidInstructionData);
    }
    let (target_bytes, limit_bytes) = body.split_at(body.len() - LIMIT_BODY_LEN);
    let (kind, target) = parse_target(target_bytes)?;
    let limit = LimitBody::parse(limit_bytes)?;
    let (mut config, now) = crate::manage(request, crate::TAG_SET_LIMITS)?;
    let slot = config.find_authority_of(kind, &target).ok_or(Error::AuthorityNotFound)?;
    let existing = config.find_limit(slot, &limit.mint);
    if limit.is_delete() {
        let index = existing.ok_or(Error::InvalidLimit)?;
        config.clear_limit(index);
        return Ok(());
    }
    limit.validate()?;
    match existing {
        Some(index) => config.update_limit(index, &limit),
        None => {
            let index = config.free_limit().ok_or(Error::LimitTableFull)?;
            config.set_new_limit(index, slot, &limit, now);
        }
    }
    Ok(())
}
