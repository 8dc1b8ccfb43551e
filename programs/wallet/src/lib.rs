//! The Numpay smart wallet program (no_std, no crates). Layouts, errors and the threat model are in
//! `docs/wallet-program.md`. One module per instruction; `rt` is the only `unsafe` module.
#![no_std]
#![no_main]

mod add_authority;
mod checks;
mod create;
mod error;
mod execute;
mod guardian_set;
mod guardians_apply;
mod guardians_cancel;
mod guardians_propose;
mod ids;
mod passkey;
mod recovery;
mod remove_authority;
mod rt;
mod set_limits;
mod set_permissions;
mod set_settings;
mod state;

use checks::Approval;
use error::{Error, ProgramResult};

pub const TAG_CREATE: u8 = 0;
pub const TAG_EXECUTE: u8 = 1;
pub const TAG_ADD_AUTHORITY: u8 = 2;
pub const TAG_REMOVE_AUTHORITY: u8 = 3;
pub const TAG_SET_LIMITS: u8 = 4;
pub const TAG_SET_PERMISSIONS: u8 = 5;
pub const TAG_SET_SETTINGS: u8 = 6;
pub const TAG_RECOVERY_START: u8 = 7;
pub const TAG_RECOVERY_APPROVE: u8 = 8;
pub const TAG_RECOVERY_WITHDRAW: u8 = 9;
pub const TAG_RECOVERY_CANCEL: u8 = 10;
pub const TAG_RECOVERY_EXECUTE: u8 = 11;
pub const TAG_GUARDIANS_PROPOSE: u8 = 12;
pub const TAG_GUARDIANS_APPLY: u8 = 13;
pub const TAG_GUARDIANS_CANCEL: u8 = 14;

/// Dispatches on the first byte of the instruction data (the tag). A tag with the passkey flag
/// (0x80) is the passkey-approved form of the same action: `tag | 0x80, body_len u16, body (as in
/// the signer form), approvals section`.
fn process(input: &rt::Input) -> ProgramResult {
    let (tag, rest) = input.data.split_first().ok_or(Error::InvalidInstructionData)?;
    let accounts = input.accounts();
    let (base, body, approval) = if tag & passkey::PASSKEY_FLAG != 0 {
        if rest.len() < 2 {
            return Err(Error::InvalidInstructionData);
        }
        let body_len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + body_len {
            return Err(Error::InvalidInstructionData);
        }
        let (body, approvals) = rest[2..].split_at(body_len);
        (tag & !passkey::PASSKEY_FLAG, body, Approval::Passkeys(approvals))
    } else {
        (*tag, rest, Approval::Signer)
    };
    let request = Request { program_id: input.program_id, accounts, body, approval };
    match (base, approval) {
        (TAG_CREATE, Approval::Signer) => create::process(input.program_id, accounts, body),
        (TAG_EXECUTE, _) => execute::process(&request),
        (TAG_ADD_AUTHORITY, _) => add_authority::process(&request),
        (TAG_REMOVE_AUTHORITY, _) => remove_authority::process(&request),
        (TAG_SET_LIMITS, _) => set_limits::process(&request),
        (TAG_SET_PERMISSIONS, _) => set_permissions::process(&request),
        (TAG_SET_SETTINGS, _) => set_settings::process(&request),
        (TAG_RECOVERY_START, _) => recovery::start(&request),
        (TAG_RECOVERY_APPROVE, _) => recovery::approve(&request),
        (TAG_RECOVERY_WITHDRAW, _) => recovery::withdraw(&request),
        (TAG_RECOVERY_CANCEL, _) => recovery::cancel(&request),
        (TAG_RECOVERY_EXECUTE, Approval::Signer) => recovery::execute(&request),
        (TAG_GUARDIANS_PROPOSE, _) => guardians_propose::process(&request),
        (TAG_GUARDIANS_APPLY, Approval::Signer) => guardians_apply::process(&request),
        (TAG_GUARDIANS_CANCEL, _) => guardians_cancel::process(&request),
        _ => Err(Error::InvalidInstructionData),
    }
}

/// One instruction after dispatch (one struct: SBPF passes at most five register arguments).
pub struct Request<'a> {
    pub program_id: &'a [u8; 32],
    pub accounts: &'a [rt::Account],
    /// The action's body: the data after the tag (signer form) or after `body_len` (passkey form).
    pub body: &'a [u8],
    pub approval: Approval<'a>,
}

/// The accounts of a manage action: 0 config (writable), 1 authority (signer) or the
/// Instructions sysvar; returns the checked config and the time, authorized by `manage`.
pub fn manage<'a>(request: &Request<'a>, tag: u8) -> Result<(state::Config<'a>, i64), Error> {
    let (config, now, _) = authorized(request, tag, state::PERMISSION_MANAGE)?;
    Ok((config, now))
}

/// As `manage`, for any permission; also returns who authorized the action.
#[inline(never)]
pub fn authorized<'a>(
    request: &Request<'a>,
    tag: u8,
    permission: u8,
) -> Result<(state::Config<'a>, i64, checks::Authorized), Error> {
    let Request { program_id, accounts, body, approval } = *request;
    let [config_account, approver, ..] = accounts else {
        return Err(Error::NotEnoughAccounts);
    };
    checks::distinct(&[config_account, approver])?;
    let mut config = checks::config(config_account, program_id)?;
    let now = rt::unix_timestamp()?;
    let action = checks::Action {
        program_id,
        accounts,
        approver: 1,
        first_extra: 2,
        tag,
        body,
        permission,
        approval,
    };
    let who = checks::authorize(&action, &mut config, now)?;
    Ok((config, now, who))
}
