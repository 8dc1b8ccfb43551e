//! The guardian set body of `guardians_propose` and `guardians_apply`: `guardian_threshold u8,
//! count u8 (0..=8)`, then `count` distinct 33-byte compressed P-256 keys (prefix `0x02`/`0x03`,
//! x not all zero); `guardian_threshold <= count`. Its SHA-256 is what a proposal stores.

use crate::error::Error;
use crate::state::{
    all_zero, opaque, same, Config, KIND_NONE, KIND_SECP256R1, MAX_AUTHORITIES, P256_KEY_LEN,
    PERMISSION_GUARDIAN,
};

/// A parsed guardian set body (the keys stay in the instruction data).
pub struct GuardianSet<'a> {
    pub threshold: u8,
    keys: &'a [u8],
}

impl<'a> GuardianSet<'a> {
    /// Parses and validates the body on its own (lengths, key prefixes, distinct keys, threshold).
    #[inline(never)]
    pub fn parse(body: &'a [u8]) -> Result<GuardianSet<'a>, Error> {
        let [threshold, count, keys @ ..] = body else {
            return Err(Error::InvalidInstructionData);
        };
        let count = *count as usize;
        let expected = count.checked_mul(P256_KEY_LEN).ok_or(Error::ArithmeticOverflow)?;
        if count > MAX_AUTHORITIES || keys.len() != expected || *threshold as usize > count {
            return Err(Error::InvalidInstructionData);
        }
        let set = GuardianSet { threshold: *threshold, keys };
        for i in 0..opaque(count) {
            let key = set.raw(i);
            if (key[0] != 2 && key[0] != 3) || all_zero(&key[1..]) {
                return Err(Error::InvalidInstructionData);
            }
            for j in 0..i {
                if same(key, set.raw(j)) {
                    return Err(Error::InvalidInstructionData);
                }
            }
        }
        Ok(set)
    }

    pub fn count(&self) -> usize {
        self.keys.len() / P256_KEY_LEN
    }

    /// The `index`-th guardian's 33-byte compressed P-256 key.
    pub fn raw(&self, index: usize) -> &'a [u8] {
        &self.keys[index * P256_KEY_LEN..(index + 1) * P256_KEY_LEN]
    }

    /// Whether a slot's key field is one of the listed keys.
    #[inline(never)]
    pub fn contains(&self, key_field: &[u8]) -> bool {
        (0..opaque(self.count())).any(|i| same(&key_field[..P256_KEY_LEN], self.raw(i)) && all_zero(&key_field[P256_KEY_LEN..]))
    }

    /// Checks the set against the wallet as it is now: no listed key may be an authority holding
    /// anything but `guardian` (6020), and the authorities that stay plus the listed guardians
    /// must fit the 8 slots (6019).
    #[inline(never)]
    pub fn check_against(&self, config: &Config) -> Result<(), Error> {
        let mut kept = 0usize;
        for slot in 0..opaque(MAX_AUTHORITIES) {
            let kind = config.authority_kind(slot);
            if kind == KIND_NONE {
                continue;
            }
            let permissions = config.authority_permissions(slot);
            let listed = kind == KIND_SECP256R1 && self.contains(config.authority_key(slot));
            if listed && permissions != PERMISSION_GUARDIAN {
                return Err(Error::AuthorityExists);
            }
            if permissions != PERMISSION_GUARDIAN {
                kept = kept.checked_add(1).ok_or(Error::ArithmeticOverflow)?;
            }
        }
        if kept.checked_add(self.count()).ok_or(Error::ArithmeticOverflow)? > MAX_AUTHORITIES {
            return Err(Error::AuthorityTableFull);
        }
        Ok(())
    }
}
