//! `execute`: moves SOL and tokens out of the vault, authorized by a `spend` authority that signs
//! the transaction (or, passkey-approved, by `spend` passkeys), within that authority's per-mint
//! limits (the first approving passkey's; none when at least the joint threshold of distinct
//! `manage` passkeys approve).
//!
//! Accounts: 0 config (writable), 1 vault (writable), 2 authority (signer) or the Instructions
//! sysvar, 3 System program,
//! 4.. the accounts the transfers name by index.
//! Data after the tag: `count u8 (1..=8), reserved 6`, then `count` transfers of 24 bytes:
//! `kind u8 (0 SOL, 1 token), destination u8, destination_token_account u8, mint u8,
//! source_token_account u8, token_program u8, associated_token_program u8, payer u8, decimals u8,
//! reserved 7, amount u64`. Account indexes of a transfer are >= 4; fields a SOL transfer does not
//! use are 0.
//!
//! All limits are checked and the spent counters written before the first transfer; any refusal
//! fails the whole transaction, so the counters and the transfers land together or not at all.
//! The only lamports that leave an account other than the vault: the rent of a recipient token
//! account that does not exist yet, paid by the transfer's `payer` (a signer) through the
//! Associated Token program's `create_idempotent`.

use crate::checks;
use crate::error::{Error, ProgramResult};
use crate::ids::{ASSOCIATED_TOKEN_PROGRAM, SOL_MINT, SYSTEM_PROGRAM, TOKEN_2022_PROGRAM, TOKEN_PROGRAM};
use crate::rt::{self, Account, Call, Meta};
use crate::state::{all_zero, same, read_key, read_u64, MAX_LIMITS, PERMISSION_SPEND, VAULT_SEED};

const HEADER_LEN: usize = 7;
const TRANSFER_LEN: usize = 24;
pub const MAX_TRANSFERS: usize = 8;
const FIRST_EXTRA_ACCOUNT: usize = 4;
const KIND_SOL: u8 = 0;
const KIND_TOKEN: u8 = 1;
/// SPL Token account layout: mint at 0, owner at 32; base size 165 bytes (Token-2022 may add more).
const TOKEN_ACCOUNT_LEN: usize = 165;

struct Transfer {
    kind: u8,
    destination: usize,
    destination_token_account: usize,
    mint: usize,
    source_token_account: usize,
    token_program: usize,
    associated_token_program: usize,
    payer: usize,
    decimals: u8,
    amount: u64,
}

impl Transfer {
    fn parse(bytes: &[u8], account_count: usize) -> Result<Transfer, Error> {
        if !all_zero(&bytes[9..16]) {
            return Err(Error::InvalidInstructionData);
        }
        let transfer = Transfer {
            kind: bytes[0],
            destination: bytes[1] as usize,
            destination_token_account: bytes[2] as usize,
            mint: bytes[3] as usize,
            source_token_account: bytes[4] as usize,
            token_program: bytes[5] as usize,
            associated_token_program: bytes[6] as usize,
            payer: bytes[7] as usize,
            decimals: bytes[8],
            amount: read_u64(bytes, 16),
        };
        let in_range = |index: usize| (FIRST_EXTRA_ACCOUNT..account_count).contains(&index);
        let valid = match transfer.kind {
            KIND_SOL => in_range(transfer.destination) && all_zero(&bytes[2..9]),
            KIND_TOKEN => bytes[1..8].iter().all(|index| in_range(*index as usize)),
            _ => false,
        };
        if !valid {
            return Err(Error::InvalidInstructionData);
        }
        if transfer.amount == 0 {
            return Err(Error::InvalidInstructionData);
        }
        Ok(transfer)
    }
}

pub fn process(request: &crate::Request) -> ProgramResult {
    let crate::Request { program_id, accounts, body, approval } = *request;
    let [config_account, vault, authority, system_program, ..] = accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    if body.len() < HEADER_LEN || !all_zero(&body[1..HEADER_LEN]) {
        return Err(Error::InvalidInstructionData);
    }
    let count = body[0] as usize;
    if count == 0 || count > MAX_TRANSFERS || body.len() != HEADER_LEN + count * TRANSFER_LEN {
        return Err(Error::InvalidInstructionData);
    }
    checks::distinct(&[config_account, vault, authority, system_program])?;
    checks::program(system_program, &SYSTEM_PROGRAM)?;
    let mut config = checks::config(config_account, program_id)?;
    checks::vault(vault, config_account, &config, program_id)?;
    let now = rt::unix_timestamp()?;
    let action = checks::Action {
        program_id,
        accounts,
        approver: 2,
        first_extra: FIRST_EXTRA_ACCOUNT,
        tag: crate::TAG_EXECUTE,
        body,
        permission: PERMISSION_SPEND,
        approval,
    };
    let authorized = checks::authorize(&action, &mut config, now)?;
    let slot = authorized.slot;
    // The owners together: enough distinct `manage` passkeys approving the same execute.
    let joint = config.joint_threshold();
    let unlimited = joint != 0 && authorized.managers >= joint as usize;

    // Pass 1: every account and every limit; the counters are written here, before any transfer.
    let mut spent_in_call = [0u64; MAX_LIMITS];
    for i in 0..count {
        let at = HEADER_LEN + i * TRANSFER_LEN;
        let transfer = Transfer::parse(&body[at..at + TRANSFER_LEN], accounts.len())?;
        let mint = check_transfer_accounts(&transfer, accounts)?;
        if unlimited {
            continue;
        }
        let limit = config.find_limit(slot, &mint).ok_or(Error::NoLimitForMint)?;
        let in_call = spent_in_call[limit].checked_add(transfer.amount).ok_or(Error::ArithmeticOverflow)?;
        let cap = config.per_transaction_cap(limit);
        if in_call > cap {
            rt::log_numbers(transfer.amount, in_call, cap, limit as u64, 0);
            return Err(Error::PerTransactionLimitExceeded);
        }
        spent_in_call[limit] = in_call;
        config.spend(limit, transfer.amount, now)?;
    }

    // Pass 2: the transfers, each signed for by the vault PDA.
    let bump = [config.vault_bump()];
    let vault_seeds: &[&[u8]] = &[VAULT_SEED, config_account.key(), &bump];
    for i in 0..count {
        let at = HEADER_LEN + i * TRANSFER_LEN;
        let transfer = Transfer::parse(&body[at..at + TRANSFER_LEN], accounts.len())?;
        if transfer.kind == KIND_SOL {
            let mut data = [0u8; 12];
            data[0] = 2; // SystemInstruction::Transfer
            data[4..12].copy_from_slice(&transfer.amount.to_le_bytes());
            let metas = [
                Meta { account: vault, writable: true, signer: true },
                Meta { account: &accounts[transfer.destination], writable: true, signer: false },
            ];
            rt::invoke(&Call { program: system_program, metas: &metas, data: &data, signer: Some(vault_seeds) })?;
        } else {
            let token_program = &accounts[transfer.token_program];
            let mint = &accounts[transfer.mint];
            let destination_token_account = &accounts[transfer.destination_token_account];
            let create_idempotent = [1u8];
            let metas = [
                Meta { account: &accounts[transfer.payer], writable: true, signer: true },
                Meta { account: destination_token_account, writable: true, signer: false },
                Meta { account: &accounts[transfer.destination], writable: false, signer: false },
                Meta { account: mint, writable: false, signer: false },
                Meta { account: system_program, writable: false, signer: false },
                Meta { account: token_program, writable: false, signer: false },
            ];
            let program = &accounts[transfer.associated_token_program];
            rt::invoke(&Call { program, metas: &metas, data: &create_idempotent, signer: None })?;
            let mut data = [0u8; 10];
            data[0] = 12; // TokenInstruction::TransferChecked
            data[1..9].copy_from_slice(&transfer.amount.to_le_bytes());
            data[9] = transfer.decimals;
            let metas = [
                Meta { account: &accounts[transfer.source_token_account], writable: true, signer: false },
                Meta { account: mint, writable: false, signer: false },
                Meta { account: destination_token_account, writable: true, signer: false },
                Meta { account: vault, writable: false, signer: true },
            ];
            rt::invoke(&Call { program: token_program, metas: &metas, data: &data, signer: Some(vault_seeds) })?;
        }
    }
    Ok(())
}

/// Checks the accounts one transfer names; returns the key its limit is kept under (the mint, or
/// the all-zero key for SOL).
fn check_transfer_accounts(transfer: &Transfer, accounts: &[Account]) -> Result<[u8; 32], Error> {
    let config_account = &accounts[0];
    let vault = &accounts[1];
    let destination = &accounts[transfer.destination];
    if transfer.kind == KIND_SOL {
        checks::distinct(&[config_account, vault, destination])?;
        checks::writable(destination)?;
        return Ok(SOL_MINT);
    }
    let mint = &accounts[transfer.mint];
    let source = &accounts[transfer.source_token_account];
    let destination_token_account = &accounts[transfer.destination_token_account];
    let token_program = &accounts[transfer.token_program];
    let associated_token_program = &accounts[transfer.associated_token_program];
    let payer = &accounts[transfer.payer];
    if !same(token_program.key(), &TOKEN_PROGRAM) && !same(token_program.key(), &TOKEN_2022_PROGRAM) {
        return Err(Error::InvalidProgramAccount);
    }
    checks::program(associated_token_program, &ASSOCIATED_TOKEN_PROGRAM)?;
    checks::distinct(&[config_account, vault, mint, source, destination_token_account, payer])?;
    checks::distinct(&[config_account, vault, destination])?;
    checks::signer(payer)?;
    checks::writable(payer)?;
    checks::writable(source)?;
    checks::writable(destination_token_account)?;
    if !same(mint.owner(), token_program.key()) {
        return Err(Error::InvalidMint);
    }
    let source_data = source.data();
    if source.owner() != token_program.key()
        || source_data.len() < TOKEN_ACCOUNT_LEN
        || read_key(source_data, 0) != *mint.key()
        || read_key(source_data, 32) != *vault.key()
    {
        return Err(Error::InvalidTokenAccount);
    }
    Ok(*mint.key())
}
