//! `add_authority`: adds an authority (key, permissions, optional expiry) to the wallet.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`).
//! Data after the tag: one authority record (48 bytes).

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::rt::{self, Account};
use crate::state::{AuthorityRecord, AUTHORITY_RECORD_LEN, PERMISSION_MANAGE};

pub fn process(program_id: &[u8; 32], accounts: &[Account], body: &[u8]) -> ProgramResult {
    let [config_account, authority, ..] = accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    if body.len() != AUTHORITY_RECORD_LEN {
        return Err(Error::InvalidInstructionData);
    }
    let record = AuthorityRecord::parse(body)?;
    checks::distinct(&[config_account, authority])?;
    let mut config = checks::config(config_account, program_id)?;
    let now = rt::unix_timestamp()?;
    checks::authority(authority, &config, PERMISSION_MANAGE, now)?;
    if config.find_authority(&record.key).is_some() {
        return Err(Error::AuthorityExists);
    }
    let slot = config.free_authority_slot().ok_or(Error::AuthorityTableFull)?;
    config.clear_authority(slot);
    config.set_authority(slot, &record);
    config.bump_nonce()
}
