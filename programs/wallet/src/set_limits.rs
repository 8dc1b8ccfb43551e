//! `set_limits`: sets (adds, changes or deletes) one authority's limit for one mint.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`).
//! Data after the tag: the target authority's key (32 bytes), then a limit body (56 bytes:
//! `mint 32, per_transaction_cap u64, period_cap u64, period_seconds u64`). Both caps 0 deletes the
//! limit. A new limit starts its period now with nothing spent; a changed limit keeps its period
//! start and spent counter.

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::rt::{self, Account};
use crate::state::{read_key, LimitBody, LIMIT_BODY_LEN, PERMISSION_MANAGE};

pub fn process(program_id: &[u8; 32], accounts: &[Account], body: &[u8]) -> ProgramResult {
    let [config_account, authority, ..] = accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    if body.len() != 32 + LIMIT_BODY_LEN {
        return Err(Error::InvalidInstructionData);
    }
    let target = read_key(body, 0);
    let limit = LimitBody::parse(&body[32..])?;
    checks::distinct(&[config_account, authority])?;
    let mut config = checks::config(config_account, program_id)?;
    let now = rt::unix_timestamp()?;
    checks::authority(authority, &config, PERMISSION_MANAGE, now)?;
    let slot = config.find_authority(&target).ok_or(Error::AuthorityNotFound)?;
    let existing = config.find_limit(slot, &limit.mint);
    if limit.is_delete() {
        let index = existing.ok_or(Error::InvalidLimit)?;
        config.clear_limit(index);
        return config.bump_nonce();
    }
    limit.validate()?;
    match existing {
        Some(index) => config.update_limit(index, &limit),
        None => {
            let index = config.free_limit().ok_or(Error::LimitTableFull)?;
            config.set_new_limit(index, slot, &limit, now);
        }
    }
    config.bump_nonce()
}
