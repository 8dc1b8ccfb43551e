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

pub const KIND_NONE: u8 = 0;
pub const KIND_ED25519: u8 = 1;
pub const KIND_SECP256R1: u8 = 2;

pub const PERMISSION_SPEND: u8 = 1;
pub const PERMISSION_MANAGE: u8 = 2;
pub const PERMISSION_GUARDIAN: u8 = 4;
pub const PERMISSIONS_KNOWN: u8 = PERMISSION_SPEND | PERMISSION_MANAGE | PERMISSION_GUARDIAN;

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

pub fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// An authority record as it arrives in instruction data (`create`, `add_authority`): 48 bytes,
/// `kind u8, permissions u8, reserved 6, key 32, expires_at i64`.
pub const AUTHORITY_RECORD_LEN: usize = 48;

pub struct AuthorityRecord {
    pub kind: u8,
    pub permissions: u8,
    pub key: [u8; 32],
    pub expires_at: i64,
}

impl AuthorityRecord {
    pub fn parse(bytes: &[u8]) -> Result<AuthorityRecord, Error> {
        if bytes.len() != AUTHORITY_RECORD_LEN || !all_zero(&bytes[2..8]) {
            return Err(Error::InvalidInstructionData);
        }
        let record = AuthorityRecord {
            kind: bytes[0],
            permissions: bytes[1],
            key: read_key(bytes, 8),
            expires_at: read_i64(bytes, 40),
        };
        if record.kind == KIND_SECP256R1 {
            return Err(Error::UnsupportedAuthorityKind);
        }
        if record.kind != KIND_ED25519
            || record.permissions == 0
            || record.permissions & !PERMISSIONS_KNOWN != 0
            || record.expires_at < 0
            || all_zero(&record.key)
        {
            return Err(Error::InvalidInstructionData);
        }
        Ok(record)
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

    /// Counts one state change (execute, add_authority, remove_authority, set_limits).
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
        (0..MAX_AUTHORITIES).find(|&slot| {
            let at = Self::authority_at(slot);
            self.data[at] == KIND_ED25519 && self.data[at + 8..at + 40] == key[..]
        })
    }

    pub fn free_authority_slot(&self) -> Option<usize> {
        (0..MAX_AUTHORITIES).find(|&slot| self.authority_kind(slot) == KIND_NONE)
    }

    pub fn set_authority(&mut self, slot: usize, record: &AuthorityRecord) {
        let at = Self::authority_at(slot);
        let entry = &mut self.data[at..at + AUTHORITY_LEN];
        entry.fill(0);
        entry[0] = record.kind;
        entry[1] = record.permissions;
        entry[8..40].copy_from_slice(&record.key);
        entry[48..56].copy_from_slice(&record.expires_at.to_le_bytes());
    }

    pub fn clear_authority(&mut self, slot: usize) {
        let at = Self::authority_at(slot);
        self.data[at..at + AUTHORITY_LEN].fill(0);
        for limit in 0..MAX_LIMITS {
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
        (0..MAX_AUTHORITIES)
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
        (0..MAX_LIMITS).find(|&index| {
            let at = Self::limit_at(index);
            self.limit_in_use(index) && self.limit_authority(index) == slot && self.data[at + 8..at + 40] == mint[..]
        })
    }

    pub fn free_limit(&self) -> Option<usize> {
        (0..MAX_LIMITS).find(|&index| !self.limit_in_use(index))
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
