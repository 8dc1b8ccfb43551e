//! The runtime boundary: the only module with `unsafe`.
//!
//! It reads the program input buffer that the loader serialises (aligned ABI: account count u64,
//! then per account `dup u8, is_signer u8, is_writable u8, executable u8, pad 4, key 32, owner 32,
//! lamports u64, data_len u64, data, 10 KiB realloc room, align 8, rent_epoch u64`; then the
//! instruction data length u64, the data, the program id), and wraps the syscalls the program uses
//! (`sol_log_`, `sol_log_64_`, `sol_invoke_signed_c`, `sol_create_program_address`,
//! `sol_try_find_program_address`, `sol_get_clock_sysvar`, `sol_get_rent_sysvar`, `sol_sha256`,
//! `abort`).
//! Everything outside this module is safe Rust.

use crate::error::Error;

/// The most accounts an instruction may pass (more is refused with `TooManyAccounts`).
pub const MAX_ACCOUNTS: usize = 24;
const REALLOC_ROOM: usize = 10 * 1024;
const NOT_DUPLICATE: u8 = 0xff;

/// One account of the instruction, read in place from the input buffer.
///
/// Every field is read live (owner, lamports and data length change when a CPI creates or
/// assigns the account). A duplicated account (the same key passed twice) points at the same
/// bytes as its first occurrence; callers reject duplicates where they matter by comparing keys.
#[derive(Clone, Copy)]
pub struct Account {
    header: *mut u8,
}

impl Account {
    const fn empty() -> Self {
        Account { header: core::ptr::null_mut() }
    }

    pub fn key(&self) -> &[u8; 32] {
        unsafe { &*(self.header.add(8) as *const [u8; 32]) }
    }

    pub fn owner(&self) -> &[u8; 32] {
        unsafe { &*(self.header.add(40) as *const [u8; 32]) }
    }

    pub fn is_signer(&self) -> bool {
        unsafe { *self.header.add(1) != 0 }
    }

    pub fn is_writable(&self) -> bool {
        unsafe { *self.header.add(2) != 0 }
    }

    pub fn is_executable(&self) -> bool {
        unsafe { *self.header.add(3) != 0 }
    }

    pub fn lamports(&self) -> u64 {
        unsafe { *(self.header.add(72) as *const u64) }
    }

    pub fn data_len(&self) -> usize {
        unsafe { *(self.header.add(80) as *const u64) as usize }
    }

    /// The account data. Mutating it is allowed only for accounts owned by this program and
    /// marked writable (the runtime rejects anything else when the instruction ends).
    pub fn data(&self) -> &mut [u8] {
        unsafe { core::slice::from_raw_parts_mut(self.header.add(88), self.data_len()) }
    }

    fn lamports_ptr(&self) -> *mut u64 {
        unsafe { self.header.add(72) as *mut u64 }
    }
}

/// The parsed program input: accounts, instruction data, program id.
pub struct Input<'a> {
    accounts: [Account; MAX_ACCOUNTS],
    count: usize,
    pub data: &'a [u8],
    pub program_id: &'a [u8; 32],
}

impl<'a> Input<'a> {
    pub fn accounts(&self) -> &[Account] {
        &self.accounts[..self.count]
    }

    unsafe fn parse(input: *mut u8) -> Result<Input<'a>, Error> {
        unsafe {
            let count = *(input as *const u64) as usize;
            if count > MAX_ACCOUNTS {
                return Err(Error::TooManyAccounts);
            }
            let mut accounts = [Account::empty(); MAX_ACCOUNTS];
            let mut at = input.add(8);
            for i in 0..count {
                let dup = *at;
                if dup != NOT_DUPLICATE {
                    accounts[i] = accounts[dup as usize];
                    at = at.add(8);
                    continue;
                }
                let account = Account { header: at };
                let span = 88 + account.data_len() + REALLOC_ROOM;
                accounts[i] = account;
                at = at.add((span + 7) & !7).add(8);
            }
            let data_len = *(at as *const u64) as usize;
            let data = core::slice::from_raw_parts(at.add(8), data_len);
            let program_id = &*(at.add(8 + data_len) as *const [u8; 32]);
            Ok(Input { accounts, count, data, program_id })
        }
    }
}

/// The loader's entry point: parse the input, run the instruction, log the reason of a refusal.
///
/// Returns 0 on success, else the error's stable custom code (`docs/wallet-program.md`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn entrypoint(input: *mut u8) -> u64 {
    let result = match unsafe { Input::parse(input) } {
        Ok(parsed) => crate::process(&parsed),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            log(error.reason());
            error.code() as u64
        }
    }
}

unsafe extern "C" {
    fn sol_log_(message: *const u8, len: u64);
    fn sol_log_64_(a: u64, b: u64, c: u64, d: u64, e: u64);
    fn sol_invoke_signed_c(
        instruction: *const CInstruction,
        infos: *const CAccountInfo,
        info_count: u64,
        signers: *const CSignerSeeds,
        signer_count: u64,
    ) -> u64;
    fn sol_create_program_address(seeds: *const CSeed, count: u64, program_id: *const u8, out: *mut u8) -> u64;
    fn sol_try_find_program_address(
        seeds: *const CSeed,
        count: u64,
        program_id: *const u8,
        out: *mut u8,
        bump: *mut u8,
    ) -> u64;
    fn sol_get_clock_sysvar(out: *mut u8) -> u64;
    fn sol_sha256(vals: *const CSeed, val_len: u64, hash_result: *mut u8) -> u64;
    fn sol_get_rent_sysvar(out: *mut u8) -> u64;
    fn abort() -> !;
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CAccountMeta {
    pubkey: *const u8,
    is_writable: bool,
    is_signer: bool,
}

#[repr(C)]
struct CInstruction {
    program_id: *const u8,
    accounts: *const CAccountMeta,
    account_len: u64,
    data: *const u8,
    data_len: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CAccountInfo {
    key: *const u8,
    lamports: *mut u64,
    data_len: u64,
    data: *mut u8,
    owner: *const u8,
    rent_epoch: u64,
    is_signer: bool,
    is_writable: bool,
    executable: bool,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CSeed {
    addr: *const u8,
    len: u64,
}

#[repr(C)]
struct CSignerSeeds {
    addr: *const CSeed,
    len: u64,
}

const MAX_SEEDS: usize = 4;
const MAX_CPI_ACCOUNTS: usize = 6;

/// Writes a message to the program log.
pub fn log(message: &[u8]) {
    unsafe { sol_log_(message.as_ptr(), message.len() as u64) }
}

/// Writes five numbers to the program log (context for a refusal: amounts, caps).
pub fn log_numbers(a: u64, b: u64, c: u64, d: u64, e: u64) {
    unsafe { sol_log_64_(a, b, c, d, e) }
}

/// Ends the program at once (used by the panic handler).
pub fn halt() -> ! {
    unsafe { abort() }
}

fn c_seeds(seeds: &[&[u8]]) -> ([CSeed; MAX_SEEDS], u64) {
    let mut out = [CSeed { addr: core::ptr::null(), len: 0 }; MAX_SEEDS];
    for (slot, seed) in out.iter_mut().zip(seeds.iter()) {
        *slot = CSeed { addr: seed.as_ptr(), len: seed.len() as u64 };
    }
    (out, seeds.len().min(MAX_SEEDS) as u64)
}

/// `create_program_address(seeds, program_id)`: the PDA, or `None` when the seeds give a point on
/// the curve.
pub fn create_program_address(seeds: &[&[u8]], program_id: &[u8; 32]) -> Option<[u8; 32]> {
    let (c, n) = c_seeds(seeds);
    let mut out = [0u8; 32];
    let status = unsafe { sol_create_program_address(c.as_ptr(), n, program_id.as_ptr(), out.as_mut_ptr()) };
    if status == 0 { Some(out) } else { None }
}

/// `find_program_address(seeds, program_id)`: the PDA with the canonical (highest) bump.
pub fn find_program_address(seeds: &[&[u8]], program_id: &[u8; 32]) -> Option<([u8; 32], u8)> {
    let (c, n) = c_seeds(seeds);
    let mut out = [0u8; 32];
    let mut bump = 0u8;
    let status = unsafe { sol_try_find_program_address(c.as_ptr(), n, program_id.as_ptr(), out.as_mut_ptr(), &mut bump) };
    if status == 0 { Some((out, bump)) } else { None }
}

/// The most byte strings one `sha256` call hashes.
pub const MAX_HASH_PARTS: usize = 32;

/// SHA-256 of the concatenation of `parts` (the `sol_sha256` syscall).
pub fn sha256(parts: &[&[u8]]) -> Result<[u8; 32], Error> {
    if parts.len() > MAX_HASH_PARTS {
        return Err(Error::InvalidInstructionData);
    }
    let mut c = [CSeed { addr: core::ptr::null(), len: 0 }; MAX_HASH_PARTS];
    for (slot, part) in c.iter_mut().zip(parts.iter()) {
        *slot = CSeed { addr: part.as_ptr(), len: part.len() as u64 };
    }
    let mut out = [0u8; 32];
    let status = unsafe { sol_sha256(c.as_ptr(), parts.len() as u64, out.as_mut_ptr()) };
    if status == 0 { Ok(out) } else { Err(Error::InvalidInstructionData) }
}

/// The cluster's unix timestamp (seconds) from the Clock sysvar.
pub fn unix_timestamp() -> Result<i64, Error> {
    let mut clock = [0u64; 5];
    let status = unsafe { sol_get_clock_sysvar(clock.as_mut_ptr() as *mut u8) };
    if status != 0 {
        return Err(Error::SysvarUnavailable);
    }
    Ok(clock[4] as i64)
}

/// The Rent sysvar: (lamports per byte-year, raw bits of the f64 exemption threshold).
pub fn rent() -> Result<(u64, u64), Error> {
    let mut rent = [0u64; 3];
    let status = unsafe { sol_get_rent_sysvar(rent.as_mut_ptr() as *mut u8) };
    if status != 0 {
        return Err(Error::SysvarUnavailable);
    }
    Ok((rent[0], rent[1]))
}

/// One account of a cross-program instruction.
pub struct Meta<'a> {
    pub account: &'a Account,
    pub writable: bool,
    pub signer: bool,
}

/// One cross-program call: `program` with `metas` and `data`; `signer` are the seeds (bump
/// included) of the one PDA this program signs for, if any. (One struct because SBPF passes at
/// most five arguments in registers.)
pub struct Call<'a> {
    pub program: &'a Account,
    pub metas: &'a [Meta<'a>],
    pub data: &'a [u8],
    pub signer: Option<&'a [&'a [u8]]>,
}

/// Makes the call; the callee's failure fails the whole transaction.
pub fn invoke(call: &Call) -> Result<(), Error> {
    let Call { program, metas, data, signer } = *call;
    if metas.len() > MAX_CPI_ACCOUNTS {
        return Err(Error::TooManyAccounts);
    }
    let empty_meta = CAccountMeta { pubkey: core::ptr::null(), is_writable: false, is_signer: false };
    let mut c_metas = [empty_meta; MAX_CPI_ACCOUNTS];
    let empty_info = CAccountInfo {
        key: core::ptr::null(),
        lamports: core::ptr::null_mut(),
        data_len: 0,
        data: core::ptr::null_mut(),
        owner: core::ptr::null(),
        rent_epoch: 0,
        is_signer: false,
        is_writable: false,
        executable: false,
    };
    let mut infos = [empty_info; MAX_CPI_ACCOUNTS + 1];
    for (i, meta) in metas.iter().enumerate() {
        let account = meta.account;
        c_metas[i] = CAccountMeta { pubkey: account.key().as_ptr(), is_writable: meta.writable, is_signer: meta.signer };
        infos[i] = info_of(account);
    }
    infos[metas.len()] = info_of(program);
    let instruction = CInstruction {
        program_id: program.key().as_ptr(),
        accounts: c_metas.as_ptr(),
        account_len: metas.len() as u64,
        data: data.as_ptr(),
        data_len: data.len() as u64,
    };
    let (seeds, seed_count) = c_seeds(signer.unwrap_or(&[]));
    let signers = CSignerSeeds { addr: seeds.as_ptr(), len: seed_count };
    let signer_count = if signer.is_some() { 1 } else { 0 };
    let status = unsafe {
        sol_invoke_signed_c(&instruction, infos.as_ptr(), (metas.len() + 1) as u64, &signers, signer_count)
    };
    if status == 0 { Ok(()) } else { Err(Error::CrossProgramCallFailed) }
}

fn info_of(account: &Account) -> CAccountInfo {
    CAccountInfo {
        key: account.key().as_ptr(),
        lamports: account.lamports_ptr(),
        data_len: account.data_len() as u64,
        data: unsafe { account.header.add(88) },
        owner: account.owner().as_ptr(),
        rent_epoch: 0,
        is_signer: account.is_signer(),
        is_writable: account.is_writable(),
        executable: account.is_executable(),
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    log(b"numpay_wallet: panic");
    halt()
}
