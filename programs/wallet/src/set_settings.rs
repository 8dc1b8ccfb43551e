//! `set_settings`: the wallet's passkey and recovery settings: the WebAuthn RP ID hash passkey
//! approvals must carry, the joint threshold (distinct `manage` passkeys whose joint approval
//! lifts the spending limits; 0 = off), the guardian threshold (0 = recovery off) and the
//! recovery timelock (seconds).
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag (48 bytes): `rp_id_hash 32, joint_threshold u8 (0 or
//! 2..=8), guardian_threshold u8 (0..=8), reserved 6, recovery_timelock i64 (>= 0)`.

use crate::error::{Error, ProgramResult};
use crate::Request;
use crate::state::{all_zero, read_i64, read_key, MAX_AUTHORITIES};

const BODY_LEN: usize = 48;

pub fn process(request: &Request) -> ProgramResult {
    let body = request.body;
    if body.len() != BODY_LEN || !all_zero(&body[34..40]) {
        return Err(Error::InvalidInstructionData);
    }
    let rp_id_hash = read_key(body, 0);
    let (joint_threshold, guardian_threshold) = (body[32], body[33]);
    let timelock = read_i64(body, 40);
    if joint_threshold == 1
        || joint_threshold as usize > MAX_AUTHORITIES
        || guardian_threshold as usize > MAX_AUTHORITIES
        || timelock < 0
    {
        return Err(Error::InvalidInstructionData);
    }
    let (mut config, now) = crate::manage(request, crate::TAG_SET_SETTINGS)?;
    config.set_settings(&rp_id_hash, joint_threshold, guardian_threshold, timelock);
    config.refresh_recovery_clock(now)
}
