//! `create`: makes a wallet's config account at `["config", creator]` (canonical bump).
//!
//! Accounts: 0 config (writable; not yet a config), 1 creator (signer), 2 payer (signer,
//! writable: funds the config's rent), 3 System program.
//! Data after the tag: `authority_count u8, limit_count u8, reserved 5`, then `authority_count`
//! authority records (48 bytes), then `limit_count` limit records (`authority_index u8,
//! reserved 7, limit body 56`).
//!
//! The address depends on the creator's key and the creator must sign: nobody else can create
//! (squat) the config, hence the vault address, that Numpay derived for a user. On a config that
//! already exists, signed by its creator, `create` succeeds and changes nothing (idempotent).

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::ids::SYSTEM_PROGRAM;
use crate::rt::{self, Account, Call, Meta};
use crate::state::{
    all_zero, AuthorityRecord, Config, LimitBody, AUTHORITY_RECORD_LEN, CONFIG_LEN, CONFIG_SEED, LIMIT_BODY_LEN,
    MAX_AUTHORITIES, MAX_LIMITS, PERMISSION_MANAGE, VAULT_SEED,
};

const HEADER_LEN: usize = 7;
const LIMIT_RECORD_LEN: usize = 8 + LIMIT_BODY_LEN;
/// Bytes the runtime counts per account on top of its data for rent.
const ACCOUNT_STORAGE_OVERHEAD: u64 = 128;

pub fn process(program_id: &[u8; 32], accounts: &[Account], body: &[u8]) -> ProgramResult {
    let [config_account, creator, payer, system_program, ..] = accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    if body.len() < HEADER_LEN || !all_zero(&body[2..HEADER_LEN]) {
        return Err(Error::InvalidInstructionData);
    }
    let authority_count = body[0] as usize;
    let limit_count = body[1] as usize;
    if authority_count == 0 || authority_count > MAX_AUTHORITIES || limit_count > MAX_LIMITS {
        return Err(Error::InvalidInstructionData);
    }
    let limits_at = HEADER_LEN + authority_count * AUTHORITY_RECORD_LEN;
    if body.len() != limits_at + limit_count * LIMIT_RECORD_LEN {
        return Err(Error::InvalidInstructionData);
    }

    checks::signer(creator)?;
    checks::signer(payer)?;
    checks::writable(payer)?;
    checks::writable(config_account)?;
    checks::program(system_program, &SYSTEM_PROGRAM)?;
    checks::distinct(&[config_account, creator])?;
    checks::distinct(&[config_account, payer])?;
    if config_account.owner() == program_id {
        // Already created: a no-op for its own creator (who signed), so a client may put `create`
        // in front of every transaction until it sees the config on-chain (two first payments in
        // flight at once both carry it); the existing config is never changed.
        let existing = checks::config(config_account, program_id)?;
        if &existing.creator() != creator.key() {
            return Err(Error::ConfigAlreadyExists);
        }
        return Ok(());
    }
    if config_account.owner() != &SYSTEM_PROGRAM || config_account.data_len() != 0 {
        return Err(Error::InvalidConfigAccount);
    }
    let (expected, config_bump) =
        rt::find_program_address(&[CONFIG_SEED, creator.key()], program_id).ok_or(Error::InvalidConfigAddress)?;
    if &expected != config_account.key() {
        return Err(Error::InvalidConfigAddress);
    }
    let (_, vault_bump) =
        rt::find_program_address(&[VAULT_SEED, config_account.key()], program_id).ok_or(Error::InvalidVaultAccount)?;

    // Validate every record before any lamport moves.
    let mut has_manager = false;
    for i in 0..authority_count {
        let at = HEADER_LEN + i * AUTHORITY_RECORD_LEN;
        let record = AuthorityRecord::parse(&body[at..at + AUTHORITY_RECORD_LEN])?;
        has_manager |= record.permissions & PERMISSION_MANAGE != 0;
        for j in 0..i {
            let other = HEADER_LEN + j * AUTHORITY_RECORD_LEN;
            let other = AuthorityRecord::parse(&body[other..other + AUTHORITY_RECORD_LEN])?;
            if other.kind == record.kind && other.key == record.key {
                return Err(Error::AuthorityExists);
            }
        }
    }
    if !has_manager {
        return Err(Error::LastOwner);
    }
    for i in 0..limit_count {
        let at = limits_at + i * LIMIT_RECORD_LEN;
        if body[at] as usize >= authority_count || !all_zero(&body[at + 1..at + 8]) {
            return Err(Error::InvalidInstructionData);
        }
        let limit = LimitBody::parse(&body[at + 8..at + LIMIT_RECORD_LEN])?;
        limit.validate()?;
        if limit.is_delete() {
            return Err(Error::InvalidLimit);
        }
        for j in 0..i {
            let other = limits_at + j * LIMIT_RECORD_LEN;
            if body[other] == body[at] && body[other + 8..other + 40] == limit.mint {
                return Err(Error::InvalidLimit);
            }
        }
    }
    let now = rt::unix_timestamp()?;

    let bump = [config_bump];
    let seeds: &[&[u8]] = &[CONFIG_SEED, creator.key(), &bump];
    allocate_config(program_id, config_account, payer, system_program, seeds)?;

    let mut config = Config { data: config_account.data() };
    config.initialize(creator.key(), config_bump, vault_bump);
    for slot in 0..authority_count {
        let at = HEADER_LEN + slot * AUTHORITY_RECORD_LEN;
        config.set_authority(slot, &AuthorityRecord::parse(&body[at..at + AUTHORITY_RECORD_LEN])?);
    }
    for index in 0..limit_count {
        let at = limits_at + index * LIMIT_RECORD_LEN;
        let limit = LimitBody::parse(&body[at + 8..at + LIMIT_RECORD_LEN])?;
        config.set_new_limit(index, body[at] as usize, &limit, now);
    }
    Ok(())
}

/// Gives the config PDA `CONFIG_LEN` bytes owned by this program, the payer funding the rent.
///
/// An address can be sent lamports by anyone before it exists; `create_account` would then fail
/// (a cheap denial of service on a handed-out address). In that case the payer tops the balance
/// up to the rent-exempt minimum and the PDA is allocated and assigned instead.
fn allocate_config(
    program_id: &[u8; 32],
    config_account: &Account,
    payer: &Account,
    system_program: &Account,
    seeds: &[&[u8]],
) -> ProgramResult {
    let rent = rent_exempt_minimum(CONFIG_LEN as u64)?;
    let funder = Meta { account: payer, writable: true, signer: true };
    let new_account = Meta { account: config_account, writable: true, signer: true };
    if config_account.lamports() == 0 {
        let mut data = [0u8; 52];
        data[0] = 0; // SystemInstruction::CreateAccount
        data[4..12].copy_from_slice(&rent.to_le_bytes());
        data[12..20].copy_from_slice(&(CONFIG_LEN as u64).to_le_bytes());
        data[20..52].copy_from_slice(program_id);
        return rt::invoke(&Call { program: system_program, metas: &[funder, new_account], data: &data, signer: Some(seeds) });
    }
    let missing = rent.saturating_sub(config_account.lamports());
    if missing > 0 {
        let mut data = [0u8; 12];
        data[0] = 2; // SystemInstruction::Transfer
        data[4..12].copy_from_slice(&missing.to_le_bytes());
        let metas = [funder, Meta { account: config_account, writable: true, signer: false }];
        rt::invoke(&Call { program: system_program, metas: &metas, data: &data, signer: None })?;
    }
    let mut allocate = [0u8; 12];
    allocate[0] = 8; // SystemInstruction::Allocate
    allocate[4..12].copy_from_slice(&(CONFIG_LEN as u64).to_le_bytes());
    let metas = [Meta { account: config_account, writable: true, signer: true }];
    rt::invoke(&Call { program: system_program, metas: &metas, data: &allocate, signer: Some(seeds) })?;
    let mut assign = [0u8; 36];
    assign[0] = 1; // SystemInstruction::Assign
    assign[4..36].copy_from_slice(program_id);
    rt::invoke(&Call { program: system_program, metas: &metas, data: &assign, signer: Some(seeds) })
}

/// `(128 + data_len) * lamports_per_byte_year * exemption_threshold`, as the runtime computes it.
/// The threshold (an f64) is applied exactly when it is a power of two (2.0 on every cluster
/// today, 1.0 after SIMD-0194); any other value is refused rather than rounded.
fn rent_exempt_minimum(data_len: u64) -> Result<u64, Error> {
    let (lamports_per_byte_year, threshold_bits) = rt::rent()?;
    let bytes = data_len.checked_add(ACCOUNT_STORAGE_OVERHEAD).ok_or(Error::ArithmeticOverflow)?;
    let base = multiply(bytes, lamports_per_byte_year)?;
    let exponent = ((threshold_bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = threshold_bits & ((1u64 << 52) - 1);
    if threshold_bits >> 63 != 0 || mantissa != 0 || !(-63..=62).contains(&exponent) {
        return Err(Error::SysvarUnavailable);
    }
    if exponent >= 0 {
        multiply(base, 1u64 << exponent)
    } else {
        Ok(base >> (-exponent))
    }
}

/// `a * b`, refusing overflow. (`checked_mul` lowers to a 128-bit multiply, which the BPF
/// backend cannot call.)
fn multiply(a: u64, b: u64) -> Result<u64, Error> {
    if b != 0 && a > u64::MAX / b {
        return Err(Error::ArithmeticOverflow);
    }
    Ok(a.wrapping_mul(b))
}
