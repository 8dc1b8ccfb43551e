//! The program's one error enum. Codes are stable (clients map them to sentences): never renumber,
//! only append. The table is in `docs/wallet-program.md`; `wallets/program/errors.py` mirrors it.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// Unknown tag, wrong length, non-zero reserved bytes, or a field out of range.
    InvalidInstructionData = 6000,
    /// Fewer accounts than the instruction needs.
    NotEnoughAccounts = 6001,
    /// More accounts than the program reads (24).
    TooManyAccounts = 6002,
    /// The config account is not owned by this program, has the wrong size, discriminator or version.
    InvalidConfigAccount = 6003,
    /// The config account's address is not the PDA of its stored seeds and bump.
    InvalidConfigAddress = 6004,
    /// The vault account is not the config's vault PDA, or is not a system account without data.
    InvalidVaultAccount = 6005,
    /// An account that must sign did not.
    MissingSignature = 6006,
    /// An account that must be writable is not.
    AccountNotWritable = 6007,
    /// The same account appears where distinct accounts are required.
    DuplicateAccount = 6008,
    /// The signing key is not an authority of this wallet.
    UnknownAuthority = 6009,
    /// The authority lacks the permission the instruction needs.
    PermissionDenied = 6010,
    /// The authority's expiry has passed.
    AuthorityExpired = 6011,
    /// The authority has no limit for this mint (spending is denied by default).
    NoLimitForMint = 6012,
    /// The amount (summed per mint over the call) is above the per-transaction cap.
    PerTransactionLimitExceeded = 6013,
    /// The amount plus what was spent this period is above the period cap.
    PeriodLimitExceeded = 6014,
    /// An amount, counter or timestamp computation overflowed.
    ArithmeticOverflow = 6015,
    /// A program account (System, Token, Token-2022, Associated Token) is not the expected one.
    InvalidProgramAccount = 6016,
    /// The mint is not owned by the given token program.
    InvalidMint = 6017,
    /// The source token account is not the vault's account for this mint and token program.
    InvalidTokenAccount = 6018,
    /// The config already holds the maximum number of authorities (8).
    AuthorityTableFull = 6019,
    /// The key is already an authority of this wallet.
    AuthorityExists = 6020,
    /// The change would leave the wallet without an authority holding `manage`.
    LastOwner = 6021,
    /// The config already holds the maximum number of limits (16).
    LimitTableFull = 6022,
    /// The config account already exists.
    ConfigAlreadyExists = 6023,
    /// The authority kind is not supported by this program version (secp256r1 comes later).
    UnsupportedAuthorityKind = 6024,
    /// A limit is malformed (zero period, zero mint for a limit to delete that does not exist...).
    InvalidLimit = 6025,
    /// The Clock or Rent sysvar could not be read, or the rent threshold is not supported.
    SysvarUnavailable = 6026,
    /// A cross-program call returned an error.
    CrossProgramCallFailed = 6027,
    /// The target authority is not in the wallet.
    AuthorityNotFound = 6028,
    /// The account in the approver's position of a passkey-approved action is not the Instructions sysvar.
    InvalidInstructionsSysvar = 6029,
    /// The named instruction is not a well-formed secp256r1 precompile instruction, the signature
    /// index is out of range, or an offset points into another instruction.
    InvalidPrecompileInstruction = 6030,
    /// The SHA-256 of the clientDataJSON is not the one the passkey signed.
    ClientDataMismatch = 6031,
    /// The authenticatorData's rpIdHash is not the wallet's RP ID hash (or the wallet has none).
    RelyingPartyMismatch = 6032,
    /// The authenticatorData lacks the user-present (UP) or user-verified (UV) flag.
    UserNotVerified = 6033,
    /// The clientDataJSON does not start with a `webauthn.get` or `payment.get` type.
    InvalidClientDataType = 6034,
    /// The clientDataJSON's challenge is not the one of this action (other action, wallet or nonce).
    ChallengeMismatch = 6035,
    /// The approvals' `expires_at` has passed.
    ApprovalExpired = 6036,
    /// The same passkey approves twice (or a guardian approves the same recovery twice).
    DuplicateApproval = 6037,
    /// Recovery is off for this wallet (guardian threshold 0).
    RecoveryDisabled = 6038,
    /// A recovery is already pending (one per wallet).
    RecoveryPending = 6039,
    /// No recovery is pending.
    NoRecoveryPending = 6040,
    /// The recovery id or new owner key is not the pending request's.
    RecoveryMismatch = 6041,
    /// The pending recovery lacks guardian approvals, or its timelock has not passed.
    RecoveryNotReady = 6042,
    /// The guardian has no approval of the pending recovery to withdraw.
    NothingToWithdraw = 6043,
    /// No guardian change is pending (never proposed, cancelled, applied, or ended by a recovery).
    NoGuardianChangePending = 6044,
    /// The pending guardian change's delay has not passed yet.
    GuardianChangeNotReady = 6045,
    /// The guardian set (or its hash) is not the pending change's.
    GuardianChangeMismatch = 6046,
}

impl Error {
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The short reason written to the log before the program returns the error.
    pub fn reason(self) -> &'static [u8] {
        match self {
            Error::InvalidInstructionData => b"numpay_wallet: invalid instruction data",
            Error::NotEnoughAccounts => b"numpay_wallet: not enough accounts",
            Error::TooManyAccounts => b"numpay_wallet: too many accounts",
            Error::InvalidConfigAccount => b"numpay_wallet: invalid config account",
            Error::InvalidConfigAddress => b"numpay_wallet: config address is not the config PDA",
            Error::InvalidVaultAccount => b"numpay_wallet: invalid vault account",
            Error::MissingSignature => b"numpay_wallet: missing signature",
            Error::AccountNotWritable => b"numpay_wallet: account not writable",
            Error::DuplicateAccount => b"numpay_wallet: duplicate account",
            Error::UnknownAuthority => b"numpay_wallet: signer is not an authority",
            Error::PermissionDenied => b"numpay_wallet: permission denied",
            Error::AuthorityExpired => b"numpay_wallet: authority expired",
            Error::NoLimitForMint => b"numpay_wallet: no limit for this mint",
            Error::PerTransactionLimitExceeded => b"numpay_wallet: per-transaction limit exceeded",
            Error::PeriodLimitExceeded => b"numpay_wallet: period limit exceeded",
            Error::ArithmeticOverflow => b"numpay_wallet: arithmetic overflow",
            Error::InvalidProgramAccount => b"numpay_wallet: unexpected program account",
            Error::InvalidMint => b"numpay_wallet: invalid mint",
            Error::InvalidTokenAccount => b"numpay_wallet: invalid source token account",
            Error::AuthorityTableFull => b"numpay_wallet: authority table full",
            Error::AuthorityExists => b"numpay_wallet: authority already exists",
            Error::LastOwner => b"numpay_wallet: cannot remove the last owner",
            Error::LimitTableFull => b"numpay_wallet: limit table full",
            Error::ConfigAlreadyExists => b"numpay_wallet: config already exists",
            Error::UnsupportedAuthorityKind => b"numpay_wallet: unsupported authority kind",
            Error::InvalidLimit => b"numpay_wallet: invalid limit",
            Error::SysvarUnavailable => b"numpay_wallet: sysvar unavailable",
            Error::CrossProgramCallFailed => b"numpay_wallet: cross-program call failed",
            Error::AuthorityNotFound => b"numpay_wallet: authority not found",
            Error::InvalidInstructionsSysvar => b"numpay_wallet: not the instructions sysvar",
            Error::InvalidPrecompileInstruction => b"numpay_wallet: invalid secp256r1 precompile instruction",
            Error::ClientDataMismatch => b"numpay_wallet: clientDataJSON hash mismatch",
            Error::RelyingPartyMismatch => b"numpay_wallet: rpIdHash mismatch",
            Error::UserNotVerified => b"numpay_wallet: user presence or verification missing",
            Error::InvalidClientDataType => b"numpay_wallet: clientDataJSON type not webauthn.get",
            Error::ChallengeMismatch => b"numpay_wallet: challenge mismatch",
            Error::ApprovalExpired => b"numpay_wallet: approval expired",
            Error::DuplicateApproval => b"numpay_wallet: duplicate approval",
            Error::RecoveryDisabled => b"numpay_wallet: recovery is off",
            Error::RecoveryPending => b"numpay_wallet: a recovery is already pending",
            Error::NoRecoveryPending => b"numpay_wallet: no recovery pending",
            Error::RecoveryMismatch => b"numpay_wallet: not the pending recovery",
            Error::RecoveryNotReady => b"numpay_wallet: recovery not ready",
            Error::NothingToWithdraw => b"numpay_wallet: no approval to withdraw",
            Error::NoGuardianChangePending => b"numpay_wallet: no guardian change pending",
            Error::GuardianChangeNotReady => b"numpay_wallet: guardian change delay not passed",
            Error::GuardianChangeMismatch => b"numpay_wallet: not the pending guardian change",
        }
    }
}

pub type ProgramResult = Result<(), Error>;
