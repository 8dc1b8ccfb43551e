//! Passkey (WebAuthn, Secp256r1) approvals: the approvals section of a passkey-approved action, and
//! the verification of each approval against the secp256r1 precompile instruction of the same
//! transaction, read through the Instructions sysvar.
//!
//! The precompile has verified the signature (the runtime fails the transaction otherwise); this
//! module checks *what* was signed and *by whom*: every offset of the signature points into the
//! precompile instruction itself, the public key is a kind-2 authority of this wallet, the signed
//! message is `authenticatorData || SHA-256(clientDataJSON)`, the rpIdHash is the wallet's, the UP
//! and UV flags are set, and the clientDataJSON is a `webauthn.get` (or `payment.get`) whose
//! challenge is the expected one. Layouts: `docs/wallet-program.md`, "Passkey approvals".

use crate::error::Error;
use crate::ids::{INSTRUCTIONS_SYSVAR, SECP256R1_PROGRAM};
use crate::rt::{self, Account};
use crate::state::{read_i64, same, Config, KIND_SECP256R1, MAX_AUTHORITIES, P256_KEY_LEN, PERMISSION_MANAGE};

/// The bit of the tag that selects the passkey-approved form of an action.
pub const PASSKEY_FLAG: u8 = 0x80;
/// Domain separation of action challenges.
const ACTION_DOMAIN: &[u8] = b"numpay-wallet/approval/v1";
/// `expires_at i64, count u8, reserved 7`.
const SECTION_HEADER_LEN: usize = 16;
/// `instruction_index u16, signature_index u8, reserved 1, client_data_len u16, reserved 2`.
const APPROVAL_HEADER_LEN: usize = 8;
pub const MAX_APPROVALS: usize = MAX_AUTHORITIES;
/// rpIdHash 32, flags 1, signCount 4.
const AUTHENTICATOR_DATA_MIN_LEN: usize = 37;
const FLAG_USER_PRESENT: u8 = 0x01;
const FLAG_USER_VERIFIED: u8 = 0x04;
/// Offsets entry of one signature in the precompile data: 7 u16.
const OFFSETS_LEN: usize = 14;
const OFFSETS_AT: usize = 2;
const THIS_INSTRUCTION: u16 = 0xffff;
const SIGNATURE_LEN: usize = 64;
const CHALLENGE_B64_LEN: usize = 43;
const TYPE_GET: &[u8] = b"{\"type\":\"webauthn.get\",\"challenge\":\"";
const TYPE_PAYMENT: &[u8] = b"{\"type\":\"payment.get\",\"challenge\":\"";

/// A parsed approvals section (lengths already checked).
pub struct Section<'a> {
    pub expires_at: i64,
    pub count: usize,
    entries: &'a [u8],
}

impl<'a> Section<'a> {
    /// Parses `expires_at i64, count u8 (1..=8), reserved 7`, then `count` approvals of
    /// `instruction_index u16, signature_index u8, reserved 1, client_data_len u16, reserved 2,
    /// clientDataJSON`; the bytes must end exactly after the last approval.
    pub fn parse(bytes: &'a [u8]) -> Result<Section<'a>, Error> {
        if bytes.len() < SECTION_HEADER_LEN || !crate::state::all_zero(&bytes[9..SECTION_HEADER_LEN]) {
            return Err(Error::InvalidInstructionData);
        }
        let count = bytes[8] as usize;
        if count == 0 || count > MAX_APPROVALS {
            return Err(Error::InvalidInstructionData);
        }
        let section = Section { expires_at: read_i64(bytes, 0), count, entries: &bytes[SECTION_HEADER_LEN..] };
        let mut at = 0;
        for _ in 0..count {
            let (_, next) = section.entry(at)?;
            at = next;
        }
        if at != section.entries.len() {
            return Err(Error::InvalidInstructionData);
        }
        Ok(section)
    }

    /// The approval starting at `at`, and where the next one starts.
    fn entry(&self, at: usize) -> Result<(Entry<'a>, usize), Error> {
        let entries = self.entries;
        let body = at.checked_add(APPROVAL_HEADER_LEN).ok_or(Error::InvalidInstructionData)?;
        if body > entries.len() || entries[at + 3] != 0 || entries[at + 6] != 0 || entries[at + 7] != 0 {
            return Err(Error::InvalidInstructionData);
        }
        let client_data_len = u16_at(entries, at + 4) as usize;
        let end = body + client_data_len;
        if client_data_len == 0 || end > entries.len() {
            return Err(Error::InvalidInstructionData);
        }
        let entry = Entry {
            instruction_index: u16_at(entries, at),
            signature_index: entries[at + 2] as usize,
            client_data: &entries[body..end],
        };
        Ok((entry, end))
    }
}

struct Entry<'a> {
    instruction_index: u16,
    signature_index: usize,
    client_data: &'a [u8],
}

/// Who approved: the slot of the first approval, the slots as a bitmap, and how many of them hold
/// `manage` (for the joint threshold).
pub struct Approvers {
    pub first_slot: usize,
    pub slots: u8,
    pub managers: usize,
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

/// The 32-byte WebAuthn challenge of an action: SHA-256 of `"numpay-wallet/approval/v1" ||
/// program id || config || nonce u64 || expires_at i64 || tag (without the passkey flag) || body
/// || the keys of `extra` accounts, in order`.
pub struct ActionDigest<'a> {
    pub program_id: &'a [u8; 32],
    pub config: &'a [u8; 32],
    pub nonce: u64,
    pub expires_at: i64,
    pub tag: u8,
    pub body: &'a [u8],
    pub extra: &'a [Account],
}

pub fn action_challenge(digest: &ActionDigest) -> Result<[u8; 32], Error> {
    const FIXED: usize = 7;
    if digest.extra.len() > rt::MAX_HASH_PARTS - FIXED {
        return Err(Error::TooManyAccounts);
    }
    let nonce = digest.nonce.to_le_bytes();
    let expires_at = digest.expires_at.to_le_bytes();
    let tag = [digest.tag];
    let mut parts: [&[u8]; rt::MAX_HASH_PARTS] = [&[]; rt::MAX_HASH_PARTS];
    parts[0] = ACTION_DOMAIN;
    parts[1] = digest.program_id;
    parts[2] = digest.config;
    parts[3] = &nonce;
    parts[4] = &expires_at;
    parts[5] = &tag;
    parts[6] = digest.body;
    for (part, account) in parts[FIXED..].iter_mut().zip(digest.extra.iter()) {
        *part = account.key();
    }
    rt::sha256(&parts[..FIXED + digest.extra.len()])
}

/// What the approvals must prove.
pub struct Expectation<'a> {
    pub challenge: &'a [u8; 32],
    /// Every bit the approving authority must hold (`state::grants`).
    pub permission: u8,
    pub now: i64,
}

/// Verifies every approval of `section` (see the module comment); returns the approvers.
pub fn verify(config: &Config, sysvar: &Account, section: &Section, expected: &Expectation) -> Result<Approvers, Error> {
    if !same(sysvar.key(), &INSTRUCTIONS_SYSVAR) {
        return Err(Error::InvalidInstructionsSysvar);
    }
    if expected.now > section.expires_at {
        return Err(Error::ApprovalExpired);
    }
    let rp_id_hash = config.rp_id_hash();
    if crate::state::all_zero(&rp_id_hash) {
        return Err(Error::RelyingPartyMismatch);
    }
    let challenge = base64url_32(expected.challenge);
    let instructions = sysvar.data();
    let mut approvers = Approvers { first_slot: 0, slots: 0, managers: 0 };
    let mut at = 0;
    for i in 0..section.count {
        let (entry, next) = section.entry(at)?;
        at = next;
        let signed = precompile_signature(instructions, entry.instruction_index, entry.signature_index)?;
        let slot = config.find_passkey(signed.public_key).ok_or(Error::UnknownAuthority)?;
        if config.authority_kind(slot) != KIND_SECP256R1 {
            return Err(Error::UnknownAuthority);
        }
        if !config.authority_is_live(slot, expected.now) {
            return Err(Error::AuthorityExpired);
        }
        let permissions = config.authority_permissions(slot);
        if !crate::state::grants(permissions, expected.permission) {
            return Err(Error::PermissionDenied);
        }
        let bit = 1u8 << slot;
        if approvers.slots & bit != 0 {
            return Err(Error::DuplicateApproval);
        }
        check_assertion(signed.message, entry.client_data, &rp_id_hash, &challenge)?;
        if i == 0 {
            approvers.first_slot = slot;
        }
        approvers.slots |= bit;
        if permissions & PERMISSION_MANAGE != 0 {
            approvers.managers += 1;
        }
    }
    Ok(approvers)
}

/// The public key and message of one signature of a secp256r1 precompile instruction.
struct Signed<'a> {
    public_key: &'a [u8],
    message: &'a [u8],
}

/// Loads instruction `index` from the Instructions sysvar data, checks that it is the secp256r1
/// precompile and that signature `signature_index` takes its key, signature and message from
/// this same instruction, and returns them.
fn precompile_signature(instructions: &[u8], index: u16, signature_index: usize) -> Result<Signed<'_>, Error> {
    let (program_id, data) = load_instruction(instructions, index as usize)?;
    if !same(program_id, &SECP256R1_PROGRAM) {
        return Err(Error::InvalidPrecompileInstruction);
    }
    if data.len() < OFFSETS_AT || signature_index >= data[0] as usize {
        return Err(Error::InvalidPrecompileInstruction);
    }
    let offsets_at = OFFSETS_AT + signature_index * OFFSETS_LEN;
    if offsets_at + OFFSETS_LEN > data.len() {
        return Err(Error::InvalidPrecompileInstruction);
    }
    let field = |n: usize| u16_at(data, offsets_at + 2 * n);
    let (signature_offset, signature_ix) = (field(0) as usize, field(1));
    let (public_key_offset, public_key_ix) = (field(2) as usize, field(3));
    let (message_offset, message_size, message_ix) = (field(4) as usize, field(5) as usize, field(6));
    for ix in [signature_ix, public_key_ix, message_ix] {
        if ix != THIS_INSTRUCTION && ix != index {
            return Err(Error::InvalidPrecompileInstruction);
        }
    }
    let within = |offset: usize, len: usize| offset + len <= data.len();
    if !within(signature_offset, SIGNATURE_LEN)
        || !within(public_key_offset, P256_KEY_LEN)
        || !within(message_offset, message_size)
    {
        return Err(Error::InvalidPrecompileInstruction);
    }
    Ok(Signed {
        public_key: &data[public_key_offset..public_key_offset + P256_KEY_LEN],
        message: &data[message_offset..message_offset + message_size],
    })
}

/// Instruction `index` of the transaction from the Instructions sysvar's data:
/// `count u16, offsets u16 × count`, each instruction at its offset: `account_count u16,
/// (flags u8, key 32) × account_count, program_id 32, data_len u16, data`.
fn load_instruction(sysvar: &[u8], index: usize) -> Result<(&[u8; 32], &[u8]), Error> {
    let bad = Error::InvalidPrecompileInstruction;
    if sysvar.len() < 2 || index >= u16_at(sysvar, 0) as usize || 2 + 2 * index + 2 > sysvar.len() {
        return Err(bad);
    }
    let at = u16_at(sysvar, 2 + 2 * index) as usize;
    if at + 2 > sysvar.len() {
        return Err(bad);
    }
    let program_at = at + 2 + (u16_at(sysvar, at) as usize) * 33;
    if program_at + 34 > sysvar.len() {
        return Err(bad);
    }
    let data_len = u16_at(sysvar, program_at + 32) as usize;
    let data_at = program_at + 34;
    if data_at + data_len > sysvar.len() {
        return Err(bad);
    }
    let program_id: &[u8; 32] = sysvar[program_at..program_at + 32].try_into().map_err(|_| bad)?;
    Ok((program_id, &sysvar[data_at..data_at + data_len]))
}

/// The WebAuthn checks on the signed message `authenticatorData || SHA-256(clientDataJSON)`.
fn check_assertion(message: &[u8], client_data: &[u8], rp_id_hash: &[u8; 32], challenge: &[u8; 43]) -> Result<(), Error> {
    if message.len() < AUTHENTICATOR_DATA_MIN_LEN + 32 {
        return Err(Error::InvalidPrecompileInstruction);
    }
    let (authenticator_data, client_data_hash) = message.split_at(message.len() - 32);
    if !same(&rt::sha256(&[client_data])?, client_data_hash) {
        return Err(Error::ClientDataMismatch);
    }
    if !same(&authenticator_data[..32], rp_id_hash) {
        return Err(Error::RelyingPartyMismatch);
    }
    let flags = authenticator_data[32];
    if flags & FLAG_USER_PRESENT == 0 || flags & FLAG_USER_VERIFIED == 0 {
        return Err(Error::UserNotVerified);
    }
    let rest = if client_data.starts_with(TYPE_GET) {
        &client_data[TYPE_GET.len()..]
    } else if client_data.starts_with(TYPE_PAYMENT) {
        &client_data[TYPE_PAYMENT.len()..]
    } else {
        return Err(Error::InvalidClientDataType);
    };
    if rest.len() <= CHALLENGE_B64_LEN || !same(&rest[..CHALLENGE_B64_LEN], challenge) || rest[CHALLENGE_B64_LEN] != b'"' {
        return Err(Error::ChallengeMismatch);
    }
    Ok(())
}

/// Base64url without padding of 32 bytes (43 characters), as WebAuthn puts the challenge in the
/// clientDataJSON.
fn base64url_32(bytes: &[u8; 32]) -> [u8; CHALLENGE_B64_LEN] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = [0u8; CHALLENGE_B64_LEN];
    let mut o = 0;
    let mut i = 0;
    while i < 30 {
        let n = (bytes[i] as u32) << 16 | (bytes[i + 1] as u32) << 8 | bytes[i + 2] as u32;
        for shift in [18, 12, 6, 0] {
            out[o] = ALPHABET[((n >> shift) & 63) as usize];
            o += 1;
        }
        i += 3;
    }
    let n = (bytes[30] as u32) << 16 | (bytes[31] as u32) << 8;
    for shift in [18, 12, 6] {
        out[o] = ALPHABET[((n >> shift) & 63) as usize];
        o += 1;
    }
    out
}
