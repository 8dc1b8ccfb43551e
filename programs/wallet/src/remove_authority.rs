//! `remove_authority`: removes an authority and its limits. The last live authority holding
//! `manage` cannot be removed.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`).
//! Data after the tag: the key to remove (32 bytes).

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::rt::{self, Account};
use crate::state::{read_key, PERMISSION_MANAGE};

pub fn process(program_id: &[u8; 32], accounts: &[Account], body: &[u8]) -> ProgramResult {
    let [config_account, authority, ..] = accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    if body.len() != 32 {
        return Err(Error::InvalidInstructionData);
    }
    let target = read_key(body, 0);
    checks::distinct(&[config_account, authority])?;
    let mut config = checks::config(config_account, program_id)?;
    let now = rt::unix_timestamp()?;
    checks::authority(authority, &config, PERMISSION_MANAGE, now)?;
    let slot = config.find_authority(&target).ok_or(Error::AuthorityNotFound)?;
    if config.count_managers(now, Some(slot)) == 0 {
        return Err(Error::LastOwner);
    }
    config.clear_authority(slot);
    config.bump_nonce()
}
