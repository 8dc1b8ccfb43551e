//! `add_authority`: adds an authority (Ed25519 key or Secp256r1 passkey, permissions, optional
//! expiry) to the wallet.
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag: one authority record (48 bytes).

use crate::error::{Error, ProgramResult};
use crate::Request;
use crate::state::{AuthorityRecord, AUTHORITY_RECORD_LEN};

pub fn process(request: &Request) -> ProgramResult {
    let body = request.body;
    if body.len() != AUTHORITY_RECORD_LEN {
        return Err(Error::InvalidInstructionData);
    }
    let record = AuthorityRecord::parse(body)?;
    let (mut config, _) = crate::manage(request, crate::TAG_ADD_AUTHORITY)?;
    if config.find_authority_of(record.kind, &record.key).is_some() {
        return Err(Error::AuthorityExists);
    }
    let slot = config.free_authority_slot().ok_or(Error::AuthorityTableFull)?;
    config.clear_authority(slot);
    config.set_authority(slot, &record);
    Ok(())
}
