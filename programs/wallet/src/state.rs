//! The config account layout (fixed size, read and written in place) and the little-endian field
//! helpers. Offsets are the ones in `docs/wallet-program.md`, "Config account".

use crate::error::Error;

pub const DISCRIMINATOR: [u8; 8] = *b"NPWALLET";
pub const VERSION: u8 = 1;

pub const HEADER_LEN: usize = 96;
pub const MAX_AUTHORITIES: usize = 8;
pub const AUTHORITY_LEN: usize = 80;
pub const MAX_LIMITS: usize = 16;
pub const LIMIT_LEN: usize = 80;
pub const EXTENSION_LEN: usize = 256;
pub const AUTHORITIES_AT: usize = HEADER_LEN;
pub const LIMITS_AT: usize = AUTHORITIES_AT + MAX_AUTHORITIES * AUTHORITY_LEN;
pub const EXTENSION_AT: usize = LIMITS_AT + MAX_LIMITS * LIMIT_LEN;
pub const CONFIG_LEN: usize = EXTENSION_AT + EXTENSION_LEN;

// header fields
const VERSION_AT: usize = 8;
const CONFIG_BUMP_AT: usize = 9;
const VAULT_BUMP_AT: usize = 10;
const CREATOR_AT: usize = 16;
const NONCE_AT: usize = 48;
const JOINT_THRESHOLD_AT: usize = 56;
const GUARDIAN_THRESHOLD_AT: usize = 57;
/// `guardian_change_delay` u32 seconds (header bytes 58..62, written by `set_settings`).
const GUARDIAN_CHANGE_DELAY_AT: usize = 58;
const RECOVERY_TIMELOCK_AT: usize = 64;
/// The wallet's WebAuthn RP ID hash (SHA-256 of the relying party id): the extension area's first 32 bytes.
pub const RP_ID_HASH_AT: usize = EXTENSION_AT;
// pending recovery (extension area after the RP ID hash)
const RECOVERY_ID_AT: usize = EXTENSION_AT + 32;
const RECOVERY_PENDING_AT: usize = RECOVERY_ID_AT + 8;
const RECOVERY_APPROVALS_AT: usize = RECOVERY_PENDING_AT + 1;
const RECOVERY_KEY_AT: usize = RECOVERY_ID_AT + 16;
const RECOVERY_EXECUTES_AT: usize = RECOVERY_KEY_AT + 40;
const RECOVERY_END: usize = RECOVERY_EXECUTES_AT + 8;
// pending guardian change (extension area after the pending recovery): pending u8, reserved 7,
// effective_at i64, SHA-256 of the proposed guardian set body (32)
const GUARDIAN_CHANGE_PENDING_AT: usize = RECOVERY_END;
const GUARDIAN_CHANGE_EFFECTIVE_AT: usize = GUARDIAN_CHANGE_PENDING_AT + 8;
const GUARDIAN_CHANGE_HASH_AT: usize = GUARDIAN_CHANGE_EFFECTIVE_AT + 8;
const GUARDIAN_CHANGE_END: usize = GUARDIAN_CHANGE_HASH_AT + 32;
/// The length of a compressed P-256 public key (`0x02`/`0x03`, then x).
pub const P256_KEY_LEN: usize = 33;
/// An authority slot's key field: 32-byte Ed25519 key or 33-byte compressed P-256 key, zero-padded.
pub const KEY_FIELD_LEN: usize = 40;

pub const KIND_NONE: u8 = 0;
pub const KIND_ED25519: u8 = 1;
pub const KIND_SECP256R1: u8 = 2;

pub const PERMISSION_SPEND: u8 = 1;
pub const PERMISSION_MANAGE: u8 = 2;
pub const PERMISSION_GUARDIAN: u8 = 4;
/// Lets an authority send `recovery_cancel` and nothing else (`manage` implies it: see `grants`).
pub const PERMISSION_RECOVERY_CANCEL: u8 = 8;
pub const PERMISSIONS_KNOWN: u8 =
    PERMISSION_SPEND | PERMISSION_MANAGE | PERMISSION_GUARDIAN | PERMISSION_RECOVERY_CANCEL;

/// Whether an authority holding `held` may take an action that needs every bit of `needed`: an owner
/// (`manage`) also holds `recovery_cancel`; no bit implies any other.
#[inline(never)]
pub fn grants(held: u8, needed: u8) -> bool {
    let held = if held & PERMISSION_MANAGE != 0 { held | PERMISSION_RECOVERY_CANCEL } else { held };
    held & needed == needed
}

pub const CONFIG_SEED: &[u8] = b"config";
pub const VAULT_SEED: &[u8] = b"vault";

pub fn read_u64(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(bytes)
}

pub fn read_i64(data: &[u8], at: usize) -> i64 {
    read_u64(data, at) as i64
}

pub fn write_u64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

pub fn read_key(data: &[u8], at: usize) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(&data[at..at + 32]);
    key
}

/// Byte-wise equality through one out-of-line `memcmp` (an inlined comparison of a constant
/// length is unrolled into byte loads on BPF, which multiplies the program size).
#[inline(never)]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a == b
}

/// A table size the optimizer cannot see through: table scans stay loops (fully unrolled, the 8-
/// and 16-entry scans with their comparisons multiplied the program size).
pub fn opaque(n: usize) -> usize {
    core::hint::black_box(n)
}

pub fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// An authority record as it arrives in instruction data (`create`, `add_authority`): 48 bytes,
/// `kind u8, permissions u8, reserved 6, key 32, expires_at i64`.
pub const AUTHORITY_RECORD_LEN: usize = 48;

pub struct AuthorityRecord {
    pub kind: u8,
    pub permissions: u8,
    /// The slot's key field: Ed25519 key then 8 zero bytes, or the 33-byte compressed P-256 key
    /// then 7 zero bytes.
    pub key: [u8; KEY_FIELD_LEN],
    pub expires_at: i64,
}

impl AuthorityRecord {
    /// Kind 1: `kind, permissions, reserved 6, Ed25519 key 32, expires_at`. Kind 2: `kind,
    /// permissions, key prefix (0x02 or 0x03), reserved 5, key x-coordinate 32, expires_at`.
    pub fn parse(bytes: &[u8]) -> Result<AuthorityRecord, Error> {
        if bytes.len() != AUTHORITY_RECORD_LEN {
            return Err(Error::InvalidInstructionData);
        }
        let kind = bytes[0];
        let mut key = [0u8; KEY_FIELD_LEN];
        match kind {
            KIND_ED25519 => {
                if !all_zero(&bytes[2..8]) {
                    return Err(Error::InvalidInstructionData);
                }
                key[..32].copy_from_slice(&bytes[8..40]);
            }
            KIND_SECP256R1 => {
                if (bytes[2] != 2 && bytes[2] != 3) || !all_zero(&bytes[3..8]) {
                    return Err(Error::InvalidInstructionData);
                }
                key[0] = bytes[2];
                key[1..P256_KEY_LEN].copy_from_slice(&bytes[8..40]);
            }
            _ => return Err(Error::InvalidInstructionData),
        }
        let record = AuthorityRecord { kind, permissions: bytes[1], key, expires_at: read_i64(bytes, 40) };
        if record.permissions == 0
            || record.permissions & !PERMISSIONS_KNOWN != 0
            || record.expires_at < 0
            || all_zero(&bytes[8..40])
        {
            return Err(Error::InvalidInstructionData);
        }
        Ok(record)
    }
}

/// A target authority named in instruction data: 32 bytes = an Ed25519 key, 33 bytes = a
/// compressed P-256 key (first byte 0x02 or 0x03). Returns (kind, key field).
pub fn parse_target(bytes: &[u8]) -> Result<(u8, [u8; KEY_FIELD_LEN]), Error> {
    let mut key = [0u8; KEY_FIELD_LEN];
    match bytes.len() {
        32 => {
            key[..32].copy_from_slice(bytes);
            Ok((KIND_ED25519, key))
        }
        P256_KEY_LEN if bytes[0] == 2 || bytes[0] == 3 => {
            key[..P256_KEY_LEN].copy_from_slice(bytes);
            Ok((KIND_SECP256R1, key))
        }
        _ => Err(Error::InvalidInstructionData),
    }
}

/// A limit body as it arrives in instruction data (`create`, `set_limits`): 56 bytes,
/// `mint 32, per_transaction_cap u64, period_cap u64, period_seconds u64`.
pub const LIMIT_BODY_LEN: usize = 56;

pub struct LimitBody {
    pub mint: [u8; 32],
    pub per_transaction_cap: u64,
    pub period_cap: u64,
    pub period_seconds: u64,
}

impl LimitBody {
    pub fn parse(bytes: &[u8]) -> Result<LimitBody, Error> {
        if bytes.len() != LIMIT_BODY_LEN {
            return Err(Error::InvalidInstructionData);
        }
        Ok(LimitBody {
            mint: read_key(bytes, 0),
            per_transaction_cap: read_u64(bytes, 32),
            period_cap: read_u64(bytes, 40),
            period_seconds: read_u64(bytes, 48),
        })
    }

    /// Both caps zero = "delete this limit".
    pub fn is_delete(&self) -> bool {
        self.per_transaction_cap == 0 && self.period_cap == 0
    }

    pub fn validate(&self) -> Result<(), Error> {
        // A period must be at least one second and fit an i64 timestamp computation.
        if self.period_seconds == 0 || self.period_seconds > i64::MAX as u64 {
            return Err(Error::InvalidLimit);
        }
        Ok(())
    }
}

/// The settings `set_settings` writes (one struct: SBPF passes at most five register arguments).
pub struct Settings {
    pub rp_id_hash: [u8; 32],
    pub joint_threshold: u8,
    pub guardian_threshold: u8,
    pub guardian_change_delay: u32,
    pub recovery_timelock: i64,
}

/// The config account, viewed in place over its data (exactly `CONFIG_LEN` bytes).
pub struct Config<'a> {
    pub data: &'a mut [u8],
}

impl<'a> Config<'a> {
    pub fn version(&self) -> u8 {
        self.data[VERSION_AT]
    }

    pub fn config_bump(&self) -> u8 {
        self.data[CONFIG_BUMP_AT]
    }

    pub fn vault_bump(&self) -> u8 {
        self.data[VAULT_BUMP_AT]
    }

    pub fn creator(&self) -> [u8; 32] {
        read_key(self.data, CREATOR_AT)
    }

    pub fn is_initialized(&self) -> bool {
        self.data.len() == CONFIG_LEN && self.data[..8] == DISCRIMINATOR
    }

    /// Writes the header of a new config (the rest of the account is zero).
    pub fn initialize(&mut self, creator: &[u8; 32], config_bump: u8, vault_bump: u8) {
        self.data[..8].copy_from_slice(&DISCRIMINATOR);
        self.data[VERSION_AT] = VERSION;
        self.data[CONFIG_BUMP_AT] = config_bump;
        self.data[VAULT_BUMP_AT] = vault_bump;
        self.data[CREATOR_AT..CREATOR_AT + 32].copy_from_slice(creator);
        write_u64(self.data, NONCE_AT, 0);
    }

    pub fn nonce(&self) -> u64 {
        read_u64(self.data, NONCE_AT)
    }

    pub fn joint_threshold(&self) -> u8 {
        self.data[JOINT_THRESHOLD_AT]
    }

    pub fn guardian_threshold(&self) -> u8 {
        self.data[GUARDIAN_THRESHOLD_AT]
    }

    pub fn recovery_timelock(&self) -> i64 {
        read_i64(self.data, RECOVERY_TIMELOCK_AT)
    }

    pub fn rp_id_hash(&self) -> [u8; 32] {
        read_key(self.data, RP_ID_HASH_AT)
    }

    /// Seconds between a `guardians_propose` and the earliest `guardians_apply` of it (0 = at once).
    pub fn guardian_change_delay(&self) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.data[GUARDIAN_CHANGE_DELAY_AT..GUARDIAN_CHANGE_DELAY_AT + 4]);
        u32::from_le_bytes(bytes)
    }

    /// Writes the wallet settings (`set_settings`).
    pub fn set_settings(&mut self, settings: &Settings) {
        self.data[RP_ID_HASH_AT..RP_ID_HASH_AT + 32].copy_from_slice(&settings.rp_id_hash);
        self.data[JOINT_THRESHOLD_AT] = settings.joint_threshold;
        self.data[GUARDIAN_THRESHOLD_AT] = settings.guardian_threshold;
        self.data[GUARDIAN_CHANGE_DELAY_AT..GUARDIAN_CHANGE_DELAY_AT + 4]
            .copy_from_slice(&settings.guardian_change_delay.to_le_bytes());
        write_u64(self.data, RECOVERY_TIMELOCK_AT, settings.recovery_timelock as u64);
    }

    pub fn set_guardian_threshold(&mut self, threshold: u8) {
        self.data[GUARDIAN_THRESHOLD_AT] = threshold;
    }

    /// Whether a guardian change (`guardians_propose`) is pending.
    pub fn guardian_change_pending(&self) -> bool {
        self.data[GUARDIAN_CHANGE_PENDING_AT] != 0
    }

    /// The earliest time the pending guardian change may be applied.
    pub fn guardian_change_effective_at(&self) -> i64 {
        read_i64(self.data, GUARDIAN_CHANGE_EFFECTIVE_AT)
    }

    /// SHA-256 of the pending guardian change's body.
    pub fn guardian_change_hash(&self) -> &[u8] {
        &self.data[GUARDIAN_CHANGE_HASH_AT..GUARDIAN_CHANGE_HASH_AT + 32]
    }

    /// Records a pending guardian change (replacing any earlier one).
    pub fn set_guardian_change(&mut self, hash: &[u8; 32], effective_at: i64) {
        self.clear_guardian_change();
        self.data[GUARDIAN_CHANGE_PENDING_AT] = 1;
        write_u64(self.data, GUARDIAN_CHANGE_EFFECTIVE_AT, effective_at as u64);
        self.data[GUARDIAN_CHANGE_HASH_AT..GUARDIAN_CHANGE_HASH_AT + 32].copy_from_slice(hash);
    }

    /// No pending guardian change.
    pub fn clear_guardian_change(&mut self) {
        self.data[GUARDIAN_CHANGE_PENDING_AT..GUARDIAN_CHANGE_END].fill(0);
    }

    /// Drops one slot's approval of the pending recovery (its guardian bit is going away).
    pub fn clear_recovery_approval(&mut self, slot: usize) {
        self.data[RECOVERY_APPROVALS_AT] &= !(1u8 << slot);
    }

    /// The key field of the authority in `slot`.
    pub fn authority_key(&self, slot: usize) -> &[u8] {
        let at = Self::authority_at(slot) + 8;
        &self.data[at..at + KEY_FIELD_LEN]
    }

    /// The id of the pending (or last) recovery request: +1 at every `recovery_start`.
    pub fn recovery_id(&self) -> u64 {
        read_u64(self.data, RECOVERY_ID_AT)
    }

    pub fn recovery_pending(&self) -> bool {
        self.data[RECOVERY_PENDING_AT] != 0
    }

    /// The guardian slots that approve the pending recovery.
    pub fn recovery_approvals(&self) -> u8 {
        self.data[RECOVERY_APPROVALS_AT]
    }

    pub fn recovery_key(&self) -> &[u8] {
        &self.data[RECOVERY_KEY_AT..RECOVERY_KEY_AT + KEY_FIELD_LEN]
    }

    pub fn recovery_executes_at(&self) -> i64 {
        read_i64(self.data, RECOVERY_EXECUTES_AT)
    }

    /// Opens a recovery request for `key` (a kind-2 key field); returns its id.
    pub fn start_recovery(&mut self, key: &[u8; KEY_FIELD_LEN]) -> Result<u64, Error> {
        let id = self.recovery_id().checked_add(1).ok_or(Error::ArithmeticOverflow)?;
        self.clear_recovery();
        write_u64(self.data, RECOVERY_ID_AT, id);
        self.data[RECOVERY_PENDING_AT] = 1;
        self.data[RECOVERY_KEY_AT..RECOVERY_KEY_AT + KEY_FIELD_LEN].copy_from_slice(key);
        Ok(id)
    }

    pub fn set_recovery_approvals(&mut self, approvals: u8) {
        self.data[RECOVERY_APPROVALS_AT] = approvals;
    }

    pub fn set_recovery_executes_at(&mut self, executes_at: i64) {
        write_u64(self.data, RECOVERY_EXECUTES_AT, executes_at as u64);
    }

    /// No pending recovery (the id stays: approvals of an old request never match a new one).
    pub fn clear_recovery(&mut self) {
        self.data[RECOVERY_PENDING_AT..RECOVERY_END].fill(0);
    }

    /// The approvals of the pending recovery that count: slots that still hold `guardian` and are live.
    pub fn counted_recovery_approvals(&self, now: i64) -> usize {
        let approvals = self.recovery_approvals();
        (0..opaque(MAX_AUTHORITIES))
            .filter(|&slot| approvals & (1u8 << slot) != 0)
            .filter(|&slot| self.authority_kind(slot) != KIND_NONE)
            .filter(|&slot| self.authority_permissions(slot) & PERMISSION_GUARDIAN != 0)
            .filter(|&slot| self.authority_is_live(slot, now))
            .count()
    }

    /// Starts or stops the pending recovery's clock: when the counted approvals reach the guardian
    /// threshold and the clock is not running, `executes_at = now + timelock`; below it (or with
    /// recovery off) the clock stops (`executes_at = 0`). Nothing without a pending recovery.
    pub fn refresh_recovery_clock(&mut self, now: i64) -> Result<(), Error> {
        if !self.recovery_pending() {
            return Ok(());
        }
        let threshold = self.guardian_threshold() as usize;
        if threshold == 0 || self.counted_recovery_approvals(now) < threshold {
            self.set_recovery_executes_at(0);
        } else if self.recovery_executes_at() == 0 {
            let executes_at = now.checked_add(self.recovery_timelock()).ok_or(Error::ArithmeticOverflow)?;
            self.set_recovery_executes_at(executes_at);
        }
        Ok(())
    }

    /// Counts one passkey-approved action (the challenge of the next approval changes).
    pub fn bump_nonce(&mut self) -> Result<(), Error> {
        let next = read_u64(self.data, NONCE_AT).checked_add(1).ok_or(Error::ArithmeticOverflow)?;
        write_u64(self.data, NONCE_AT, next);
        Ok(())
    }

    fn authority_at(slot: usize) -> usize {
        AUTHORITIES_AT + slot * AUTHORITY_LEN
    }

    pub fn authority_kind(&self, slot: usize) -> u8 {
        self.data[Self::authority_at(slot)]
    }

    pub fn authority_permissions(&self, slot: usize) -> u8 {
        self.data[Self::authority_at(slot) + 1]
    }

    pub fn authority_expires_at(&self, slot: usize) -> i64 {
        read_i64(self.data, Self::authority_at(slot) + 48)
    }

    /// The slot of an Ed25519 authority with this key.
    pub fn find_authority(&self, key: &[u8; 32]) -> Option<usize> {
        let mut field = [0u8; KEY_FIELD_LEN];
        field[..32].copy_from_slice(key);
        self.find_authority_of(KIND_ED25519, &field)
    }

    /// The slot of an authority of `kind` whose key field is `key`.
    #[inline(never)]
    pub fn find_authority_of(&self, kind: u8, key: &[u8; KEY_FIELD_LEN]) -> Option<usize> {
        (0..opaque(MAX_AUTHORITIES)).find(|&slot| {
            let at = Self::authority_at(slot);
            self.data[at] == kind && same(&self.data[at + 8..at + 8 + KEY_FIELD_LEN], key)
        })
    }

    /// The slot of the Secp256r1 authority with this compressed P-256 key.
    pub fn find_passkey(&self, key: &[u8]) -> Option<usize> {
        if key.len() != P256_KEY_LEN {
            return None;
        }
        let mut field = [0u8; KEY_FIELD_LEN];
        field[..P256_KEY_LEN].copy_from_slice(key);
        self.find_authority_of(KIND_SECP256R1, &field)
    }

    pub fn set_authority_permissions(&mut self, slot: usize, permissions: u8) {
        self.data[Self::authority_at(slot) + 1] = permissions;
    }

    pub fn free_authority_slot(&self) -> Option<usize> {
        (0..opaque(MAX_AUTHORITIES)).find(|&slot| self.authority_kind(slot) == KIND_NONE)
    }

    pub fn set_authority(&mut self, slot: usize, record: &AuthorityRecord) {
        let at = Self::authority_at(slot);
        let entry = &mut self.data[at..at + AUTHORITY_LEN];
        entry.fill(0);
        entry[0] = record.kind;
        entry[1] = record.permissions;
        entry[8..8 + KEY_FIELD_LEN].copy_from_slice(&record.key);
        entry[48..56].copy_from_slice(&record.expires_at.to_le_bytes());
    }

    /// Writes `slot` as a kind-2 authority holding only `guardian`, never expiring (`guardians_apply`).
    #[inline(never)]
    pub fn set_passkey_guardian(&mut self, slot: usize, key: &[u8]) {
        let at = Self::authority_at(slot);
        let entry = &mut self.data[at..at + AUTHORITY_LEN];
        entry.fill(0);
        entry[0] = KIND_SECP256R1;
        entry[1] = PERMISSION_GUARDIAN;
        entry[8..8 + P256_KEY_LEN].copy_from_slice(key);
    }

    pub fn clear_authority(&mut self, slot: usize) {
        let at = Self::authority_at(slot);
        self.data[at..at + AUTHORITY_LEN].fill(0);
        // A removed guardian's approval of a pending recovery goes with it (the slot may be reused).
        self.data[RECOVERY_APPROVALS_AT] &= !(1u8 << slot);
        for limit in 0..opaque(MAX_LIMITS) {
            if self.limit_in_use(limit) && self.limit_authority(limit) == slot {
                self.clear_limit(limit);
            }
        }
    }

    /// Whether the authority in `slot` may act at `now` (no expiry, or expiry still ahead).
    pub fn authority_is_live(&self, slot: usize, now: i64) -> bool {
        let expires_at = self.authority_expires_at(slot);
        expires_at == 0 || now < expires_at
    }

    /// Live authorities holding `manage`, not counting `except`.
    pub fn count_managers(&self, now: i64, except: Option<usize>) -> usize {
        (0..opaque(MAX_AUTHORITIES))
            .filter(|&slot| Some(slot) != except)
            .filter(|&slot| self.authority_kind(slot) != KIND_NONE)
            .filter(|&slot| self.authority_permissions(slot) & PERMISSION_MANAGE != 0)
            .filter(|&slot| self.authority_is_live(slot, now))
            .count()
    }

    fn limit_at(index: usize) -> usize {
        LIMITS_AT + index * LIMIT_LEN
    }

    pub fn limit_in_use(&self, index: usize) -> bool {
        self.data[Self::limit_at(index)] != 0
    }

    pub fn limit_authority(&self, index: usize) -> usize {
        self.data[Self::limit_at(index) + 1] as usize
    }

    pub fn find_limit(&self, slot: usize, mint: &[u8; 32]) -> Option<usize> {
        (0..opaque(MAX_LIMITS)).find(|&index| {
            let at = Self::limit_at(index);
            self.limit_in_use(index) && self.limit_authority(index) == slot && same(&self.data[at + 8..at + 40], mint)
        })
    }

    pub fn free_limit(&self) -> Option<usize> {
        (0..opaque(MAX_LIMITS)).find(|&index| !self.limit_in_use(index))
    }

    /// A new limit entry: the period starts `now`, nothing spent.
    pub fn set_new_limit(&mut self, index: usize, slot: usize, body: &LimitBody, now: i64) {
        let at = Self::limit_at(index);
        let entry = &mut self.data[at..at + LIMIT_LEN];
        entry.fill(0);
        entry[0] = 1;
        entry[1] = slot as u8;
        entry[8..40].copy_from_slice(&body.mint);
        write_u64(entry, 40, body.per_transaction_cap);
        write_u64(entry, 48, body.period_cap);
        write_u64(entry, 56, body.period_seconds);
        write_u64(entry, 64, now as u64);
        write_u64(entry, 72, 0);
    }

    /// New caps and period for an existing entry; the spent counter and period start stay.
    pub fn update_limit(&mut self, index: usize, body: &LimitBody) {
        let at = Self::limit_at(index);
        write_u64(self.data, at + 40, body.per_transaction_cap);
        write_u64(self.data, at + 48, body.period_cap);
        write_u64(self.data, at + 56, body.period_seconds);
    }

    pub fn clear_limit(&mut self, index: usize) {
        let at = Self::limit_at(index);
        self.data[at..at + LIMIT_LEN].fill(0);
    }

    pub fn per_transaction_cap(&self, index: usize) -> u64 {
        read_u64(self.data, Self::limit_at(index) + 40)
    }

    /// Counts `amount` against the period cap of limit `index` at time `now`, rolling the period
    /// first: when `now >= period_start + period_seconds` the start advances by whole periods and
    /// the spent counter restarts at 0. Refuses (changing nothing) when the cap would be passed.
    pub fn spend(&mut self, index: usize, amount: u64, now: i64) -> Result<(), Error> {
        let at = Self::limit_at(index);
        let period_cap = read_u64(self.data, at + 48);
        let period_seconds = read_u64(self.data, at + 56) as i64;
        let mut period_start = read_i64(self.data, at + 64);
        let mut spent = read_u64(self.data, at + 72);
        if period_seconds <= 0 {
            return Err(Error::InvalidLimit);
        }
        let elapsed = now.checked_sub(period_start).ok_or(Error::ArithmeticOverflow)?;
        if elapsed >= period_seconds {
            // Whole periods elapsed, in seconds: at most `elapsed`, so it cannot overflow.
            let whole = (elapsed / period_seconds).wrapping_mul(period_seconds);
            period_start = period_start.checked_add(whole).ok_or(Error::ArithmeticOverflow)?;
            spent = 0;
        }
        let total = spent.checked_add(amount).ok_or(Error::ArithmeticOverflow)?;
        if total > period_cap {
            crate::rt::log_numbers(amount, spent, period_cap, index as u64, 0);
            return Err(Error::PeriodLimitExceeded);
        }
        write_u64(self.data, at + 64, period_start as u64);
        write_u64(self.data, at + 72, total);
        Ok(())
    }
}
