//! Account checks shared by the instructions: owner, PDA with the stored bump, signer, writable,
//! distinct accounts, and the authority lookup (permission, expiry).

use crate::error::Error;
use crate::ids::SYSTEM_PROGRAM;
use crate::passkey;
use crate::rt::{self, Account};
use crate::state::{grants, same, Config, CONFIG_LEN, CONFIG_SEED, VAULT_SEED, VERSION};

pub fn signer(account: &Account) -> Result<(), Error> {
    if account.is_signer() { Ok(()) } else { Err(Error::MissingSignature) }
}

pub fn writable(account: &Account) -> Result<(), Error> {
    if account.is_writable() { Ok(()) } else { Err(Error::AccountNotWritable) }
}

/// Refuses when two of `accounts` are the same account (same key).
#[inline(never)]
pub fn distinct(accounts: &[&Account]) -> Result<(), Error> {
    for (i, a) in accounts.iter().enumerate() {
        for b in &accounts[i + 1..] {
            if same(a.key(), b.key()) {
                return Err(Error::DuplicateAccount);
            }
        }
    }
    Ok(())
}

pub fn program(account: &Account, id: &[u8; 32]) -> Result<(), Error> {
    if same(account.key(), id) { Ok(()) } else { Err(Error::InvalidProgramAccount) }
}

/// The writable config account of this program: owner, size, discriminator, version, and its
/// address re-derived from the stored creator and bump (`["config", creator, bump]`).
pub fn config<'a>(account: &'a Account, program_id: &[u8; 32]) -> Result<Config<'a>, Error> {
    if account.owner() != program_id || account.data_len() != CONFIG_LEN {
        return Err(Error::InvalidConfigAccount);
    }
    let config = Config { data: account.data() };
    if !config.is_initialized() || config.version() != VERSION {
        return Err(Error::InvalidConfigAccount);
    }
    let creator = config.creator();
    let bump = [config.config_bump()];
    let expected = rt::create_program_address(&[CONFIG_SEED, &creator, &bump], program_id);
    if expected.as_ref() != Some(account.key()) {
        return Err(Error::InvalidConfigAddress);
    }
    writable(account)?;
    Ok(config)
}

/// The vault: `["vault", config, stored bump]`, a system account without data.
pub fn vault(account: &Account, config_account: &Account, config: &Config, program_id: &[u8; 32]) -> Result<(), Error> {
    let bump = [config.vault_bump()];
    let expected = rt::create_program_address(&[VAULT_SEED, config_account.key(), &bump], program_id);
    if expected.as_ref() != Some(account.key()) || account.owner() != &SYSTEM_PROGRAM || account.data_len() != 0 {
        return Err(Error::InvalidVaultAccount);
    }
    writable(account)
}

/// The slot of the signing authority, which must be live and hold every bit of `permission`
/// (`state::grants`).
pub fn authority(account: &Account, config: &Config, permission: u8, now: i64) -> Result<usize, Error> {
    signer(account)?;
    let slot = config.find_authority(account.key()).ok_or(Error::UnknownAuthority)?;
    if !config.authority_is_live(slot, now) {
        return Err(Error::AuthorityExpired);
    }
    if !grants(config.authority_permissions(slot), permission) {
        return Err(Error::PermissionDenied);
    }
    Ok(slot)
}

/// How an action is approved: by the Ed25519 authority that signs (the account at the approver
/// position), or by passkeys (that account is the Instructions sysvar; the bytes are the
/// approvals section).
#[derive(Clone, Copy)]
pub enum Approval<'a> {
    Signer,
    Passkeys(&'a [u8]),
}

/// An action to authorize: `accounts[approver]` is the signer or the Instructions sysvar; the
/// keys of `accounts[first_extra..]` are bound into a passkey challenge with `tag` and `body`.
pub struct Action<'a> {
    pub program_id: &'a [u8; 32],
    pub accounts: &'a [Account],
    pub approver: usize,
    pub first_extra: usize,
    pub tag: u8,
    pub body: &'a [u8],
    pub permission: u8,
    pub approval: Approval<'a>,
}

/// Who authorized an action: `slot` is the signer's (or the first approving passkey's) slot;
/// `managers` how many distinct approving passkeys hold `manage` (0 for a signer).
pub struct Authorized {
    pub slot: usize,
    pub managers: usize,
    /// The approving slots as a bitmap (the signer's one bit for the signer form).
    pub slots: u8,
}

/// Checks that the action is approved by authorities holding `action.permission`. A
/// passkey-approved action also bumps the config's nonce (its approvals cannot be replayed).
pub fn authorize(action: &Action, config: &mut Config, now: i64) -> Result<Authorized, Error> {
    let approver = action.accounts.get(action.approver).ok_or(Error::NotEnoughAccounts)?;
    match action.approval {
        Approval::Signer => {
            let slot = authority(approver, config, action.permission, now)?;
            Ok(Authorized { slot, managers: 0, slots: 1u8 << slot })
        }
        Approval::Passkeys(bytes) => {
            let section = passkey::Section::parse(bytes)?;
            let extra = action.accounts.get(action.first_extra..).unwrap_or(&[]);
            let challenge = passkey::action_challenge(&passkey::ActionDigest {
                program_id: action.program_id,
                config: action.accounts[0].key(),
                nonce: config.nonce(),
                expires_at: section.expires_at,
                tag: action.tag,
                body: action.body,
                extra,
            })?;
            let expected = passkey::Expectation { challenge: &challenge, permission: action.permission, now };
            let approvers = passkey::verify(config, approver, &section, &expected)?;
            config.bump_nonce()?;
            Ok(Authorized { slot: approvers.first_slot, managers: approvers.managers, slots: approvers.slots })
        }
    }
}
