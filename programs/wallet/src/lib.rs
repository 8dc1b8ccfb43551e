//! The Numpay smart wallet program (no_std, no crates). Layouts, errors and the threat model are in
//! `docs/wallet-program.md`. One module per instruction; `rt` is the only `unsafe` module.
#![no_std]
#![no_main]

mod add_authority;
mod checks;
mod create;
mod error;
mod execute;
mod ids;
mod remove_authority;
mod rt;
mod set_limits;
mod state;

use error::{Error, ProgramResult};

pub const TAG_CREATE: u8 = 0;
pub const TAG_EXECUTE: u8 = 1;
pub const TAG_ADD_AUTHORITY: u8 = 2;
pub const TAG_REMOVE_AUTHORITY: u8 = 3;
pub const TAG_SET_LIMITS: u8 = 4;

/// Dispatches on the first byte of the instruction data (the tag).
fn process(input: &rt::Input) -> ProgramResult {
    let (tag, body) = input.data.split_first().ok_or(Error::InvalidInstructionData)?;
    let accounts = input.accounts();
    match *tag {
        TAG_CREATE => create::process(input.program_id, accounts, body),
        TAG_EXECUTE => execute::process(input.program_id, accounts, body),
        TAG_ADD_AUTHORITY => add_authority::process(input.program_id, accounts, body),
        TAG_REMOVE_AUTHORITY => remove_authority::process(input.program_id, accounts, body),
        TAG_SET_LIMITS => set_limits::process(input.program_id, accounts, body),
        _ => Err(Error::InvalidInstructionData),
    }
}
