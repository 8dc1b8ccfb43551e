//! `set_settings`: the wallet's passkey and recovery settings: the WebAuthn RP ID hash passkey
//! approvals must carry, the joint threshold (distinct `manage` passkeys whose joint approval
//! lifts the spending limits; 0 = off), the guardian threshold (0 = recovery off), the
//! recovery timelock (seconds) and the guardian change delay (seconds between `guardians_propose`
//! and the earliest `guardians_apply`).
//!
//! Accounts: 0 config (writable), 1 authority (signer, `manage`) or, passkey-approved, the
//! Instructions sysvar. Data after the tag (48 bytes): `rp_id_hash 32, joint_threshold u8 (0 or
//! 2..=8), guardian_threshold u8 (0..=8), guardian_change_delay u32 (seconds), reserved 2,
//! recovery_timelock i64 (>= 0)`. Clients that wrote the reserved 6 bytes as zeros set a delay of 0.

use crate::error::{Error, ProgramResult};
use crate::Request;
use crate::state::{all_zero, read_i64, read_key, Settings, MAX_AUTHORITIES};

const BODY_LEN: usize = 48;

pub fn process(request: &Request) -> ProgramResult {
    let body = request.body;
    if body.len() != BODY_LEN || !all_zero(&body[38..40]) {
        return Err(Error::InvalidInstructionData);
    }
    let rp_id_hash = read_key(body, 0);
    let (joint_threshold, guardian_threshold) = (body[32], body[33]);
    let timelock = read_i64(body, 40);
    let guardian_change_delay = u32::from_le_bytes([body[34], body[35], body[36], body[37]]);
    if joint_threshold == 1
        || joint_threshold as usize > MAX_AUTHORITIES
        || guardian_threshold as usize > MAX_AUTHORITIES
        || timelock < 0
    {
        return Err(Error::InvalidInstructionData);
    }
    let (mut config, now) = crate::manage(request, crate::TAG_SET_SETTINGS)?;
    config.set_settings(&Settings {
        rp_id_hash,
        joint_threshold,
        guardian_threshold,
        guardian_change_delay,
        recovery_timelock: timelock,
    });
    config.refresh_recovery_clock(now)
}
