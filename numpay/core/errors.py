"""The one error family of Numpay and the one registry of its codes.

STYLE.md: "One ApplicationError family mapped to HTTP by one DRF exception handler" and "Errors have
codes from one registry". Every code a client or a page can see is registered in :data:`REGISTRY` with
its HTTP status, a default plain-words message and a short title. Services raise
``ApplicationError(code)`` (the status and, unless given, the message come from the registry); the DRF
exception handler (:mod:`numpay.core.api`) renders it as problem-details JSON (RFC 9457), the pages'
middleware (:mod:`numpay.core.middleware`) as a friendly page, and the OpenAPI schema documents each
endpoint's codes from here, so documented and raised codes cannot drift. Raising an unregistered code
is a programming error (``LookupError``), caught before it ships by ``tests/test_errors.py``, which
scans every raise site in the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """One registered error code.

    :ivar code: stable machine-readable code, snake_case, never reworded once published.
    :ivar status: the HTTP status the API and pages answer with.
    :ivar message: the default sentence for people (a raise site may give a more precise one).
    :ivar title: a short summary of the problem type (problem details ``title``; used in the API docs).
    """

    code: str
    status: int
    message: str
    title: str


def _registry(*entries: ErrorCode) -> dict[str, ErrorCode]:
    registry: dict[str, ErrorCode] = {}
    for entry in entries:
        if entry.code in registry:  # pragma: no cover - guarded at import time
            raise ValueError(f"Error code {entry.code!r} is registered twice")
        registry[entry.code] = entry
    return registry


E = ErrorCode

#: Every error code of Numpay, by code.
REGISTRY: dict[str, ErrorCode] = _registry(
    # --- the request itself (DRF, parsers, middleware) ---
    E("invalid_request", 400, "The request has invalid fields.", "Invalid fields"),
    E("malformed_request", 400, "The request body is not valid JSON.", "Malformed request body"),
    E("request_too_deep", 400, "The request body is nested too deeply.", "Request body nested too deeply"),
    E("request_too_large", 400, "The request body is too large.", "Request body too large"),
    E("unsupported_media_type", 415, "Send the request body as application/json.", "Unsupported media type"),
    E("not_acceptable", 406, "The requested response format is not available.", "Not acceptable"),
    E("method_not_allowed", 405, "This method is not allowed here.", "Method not allowed"),
    E("not_authenticated", 401, "Sign in first: send a session cookie or an X-Session-Token header.",
      "Not authenticated"),
    E("authentication_failed", 401, "The session token is invalid or has expired; sign in again.",
      "Authentication failed"),
    E("permission_denied", 403, "You are not allowed to do this.", "Permission denied"),
    E("not_found", 404, "There is nothing here.", "Not found"),
    E("throttled", 429, "Too many requests; please slow down.", "Too many requests"),
    E("rate_limited", 429, "You have done this too often; please wait a minute and try again.", "Rate limited"),
    E("server_error", 500, "Something went wrong on our side.", "Server error"),
    # --- accounts ---
    E("last_sign_in_method", 409, "This is your only way to sign in; add another one before removing it.",
      "Last sign-in method"),
    E("passkey_owns_wallet", 409, "This passkey owns your wallet on-chain. Removing it from your account would "
      "not take it off your wallet, so it cannot be removed yet: first use \"Remove from wallet\" (approved with "
      "another passkey that owns it), or wait until its change on the network is done.", "Passkey owns the wallet"),
    # --- amounts, tokens, memos (numpay.core.money, wallets) ---
    E("invalid_amount", 400, "Enter the amount as a number, like 12.50.", "Invalid amount"),
    E("amount_not_positive", 400, "The amount must be greater than zero.", "Amount not positive"),
    E("too_many_decimals", 400, "The amount has more decimal places than the token.", "Too many decimals"),
    E("amount_too_large", 400, "The amount is too large.", "Amount too large"),
    E("unknown_token", 400, "Numpay does not support this token here.", "Unknown token"),
    E("memo_too_long", 400, "The memo is too long.", "Memo too long"),
    E("invalid_memo", 400, "The memo cannot contain control characters.", "Invalid memo"),
    # --- wallets ---
    E("wallet_not_found", 404, "This account has no wallet.", "No wallet"),
    E("wallet_frozen", 403, "This wallet is frozen; contact support.", "Wallet frozen"),
    E("wallet_upgrade_blocked", 409, "This wallet has a payment in progress; upgrade it once the payment has "
      "ended.", "Wallet upgrade blocked"),
    E("wallet_unclaimed", 403, "Confirm your email address to use the money sent to it.", "Email not confirmed"),
    E("faucet_limit_exceeded", 400, "The test faucet gives less than that per request.", "Faucet limit exceeded"),
    # --- payments ---
    E("idempotency_key_required", 400, "Send an Idempotency-Key header with every payment.",
      "Idempotency-Key required"),
    E("invalid_idempotency_key", 400, "The Idempotency-Key header is longer than 255 characters.",
      "Invalid Idempotency-Key"),
    E("idempotency_key_reused", 422, "This Idempotency-Key was already used for a different payment.",
      "Idempotency-Key reused"),
    E("recipient_required", 400, "Enter an email address or a Solana address.", "Recipient required"),
    E("invalid_address", 400, "That is not a valid Solana address (base58, 32 bytes).", "Invalid address"),
    E("invalid_recipient", 400, "Payments to this address cannot be spent by anyone.", "Invalid recipient"),
    E("recipient_is_sender", 400, "You cannot send a payment to your own wallet.", "Recipient is sender"),
    E("insufficient_funds", 400, "Your balance is too low for this payment.", "Insufficient funds"),
    E("amount_below_rent_minimum", 400, "A new Solana address must receive at least the rent-exempt minimum.",
      "Amount below rent minimum"),
    E("would_leave_dust", 400, "Solana needs a wallet to keep at least its rent-exempt minimum or nothing.",
      "Would leave dust"),
    E("recipient_account_missing", 400, "That address has no account for this token yet, and Numpay cannot open "
      "one for it. Ask the recipient to open one first.", "Recipient account missing"),
    E("payment_not_found", 404, "No such payment.", "Payment not found"),
    E("invalid_cursor", 400, "This page link is not valid any more; start from the first page.", "Invalid cursor"),
    E("invalid_filter", 400, "Filter by a token symbol and a direction: sent or received.", "Invalid filter"),
    E("payment_not_reclaimable", 409, "Only a payment to an email nobody has claimed can be taken back.",
      "Payment not reclaimable"),
    E("payment_reclaim_too_early", 409, "This payment can be taken back only after the claim period.",
      "Reclaim too early"),
    E("payment_not_approvable", 409, "This payment is not waiting for an approval.", "Payment not approvable"),
    E("payment_expired", 409, "This payment expired before it was approved; nothing left your wallet.",
      "Payment expired"),
    E("payment_not_cancellable", 409, "This payment can no longer be cancelled: it was already approved.",
      "Payment not cancellable"),
    E("payment_cancelled", 409, "You cancelled this payment before approving it; nothing left your wallet.",
      "Payment cancelled"),
    # --- passkey step-up of a payment (payments.approvals) ---
    E("approval_not_needed", 409, "This payment does not need a passkey approval.", "Approval not needed"),
    E("passkeys_insufficient", 409, "You need more registered passkeys to approve this payment.",
      "Not enough passkeys"),
    E("approval_challenge_unknown", 400, "This approval request is unknown; start the approval again.",
      "Unknown approval challenge"),
    E("approval_wrong_payment", 400, "This approval was made for another payment; nothing was approved.",
      "Approval for another payment"),
    E("approval_challenge_used", 409, "This approval request was already used; start the approval again.",
      "Approval challenge used"),
    E("approval_challenge_expired", 409, "This approval request expired; start the approval again.",
      "Approval challenge expired"),
    E("passkey_unknown", 400, "This passkey is not one of yours.", "Unknown passkey"),
    E("passkey_already_approved", 409, "This passkey already approved this payment; approve on another device "
      "with another passkey.", "Passkey already approved"),
    E("passkey_assertion_invalid", 400, "Your passkey's answer could not be verified; nothing was changed. "
      "Try again with your passkey.",
      "Passkey assertion invalid"),
    E("wallet_protection_pending", 409, "Your passkey is being added to your wallet on the network; try again in a "
      "few seconds.", "Wallet protection pending"),
    E("approval_outdated", 409, "Your wallet is now protected by your passkey on the network; start the approval "
      "again.", "Approval outdated"),
    E("transaction_too_large", 400, "This payment does not fit one Solana transaction.", "Transaction too large"),
    E("passkey_not_found", 404, "No such passkey.", "Passkey not found"),
    E("wallet_not_protected", 409, "Your wallet is not protected by a passkey yet.", "Wallet not protected"),
    E("passkey_already_owner", 409, "This passkey already is (or is becoming) an owner of your wallet.",
      "Passkey already an owner"),
    E("passkey_removed_from_wallet", 409, "This passkey was taken off your wallet; it cannot own it again. "
      "Register a new passkey on that device and make that one an owner.", "Passkey removed from the wallet"),
    E("passkey_not_wallet_owner", 409, "This passkey does not own your wallet on-chain; remove it from your account "
      "instead.", "Passkey not a wallet owner"),
    E("passkey_only_wallet_owner", 409, "This is the only passkey that owns your wallet, so it cannot be taken off "
      "it: make another passkey an owner first. If you lost the device, recover your wallet through your "
      "guardians.", "Only owner passkey"),
    E("wallet_change_pending", 409, "Another change to your wallet's owner passkeys is on its way to the network; "
      "try again in a few seconds.", "Wallet change pending"),
    E("passkey_removal_not_found", 404, "No such passkey removal.", "Passkey removal not found"),
    E("passkey_limits_in_place", 409, "This passkey already has its limits on your wallet: it can approve payments "
      "on its own.", "Passkey limits in place"),
    E("passkey_change_not_found", 404, "No such passkey change.", "Passkey change not found"),
    E("passkey_sign_count_regressed", 400, "This passkey's signature counter went backwards: it may have been "
      "copied. Nothing was approved.", "Passkey sign count regressed"),
    # --- spending policies (payments.policies) ---
    E("limit_exceeded", 400, "This payment is above your spending limit.", "Spending limit exceeded"),
    E("velocity_exceeded", 429, "You have made too many payments in the last hour; try again later.",
      "Too many payments"),
    E("recipient_not_allowed", 400, "Your limits allow payments only to approved recipients.",
      "Recipient not allowed"),
    E("limit_not_tighter", 400, "You can only lower your own limits, never raise or remove them.",
      "Limit not tighter"),
    # --- guardian recovery (recovery) ---
    E("passkey_required", 409, "Add a passkey to your account first.", "Passkey required"),
    E("passkey_registration_invalid", 400, "The new passkey could not be registered. Try again.",
      "Passkey registration invalid"),
    E("owner_passkey_required", 403, "Confirm this with your passkey.", "Owner passkey required"),
    E("guardian_is_owner", 400, "You cannot be your own guardian.", "Guardian is owner"),
    E("guardian_limit_reached", 409, "You already have the most guardians (and invitations) allowed.",
      "Guardian limit reached"),
    E("guardian_already_invited", 409, "This person is already your guardian or has an open invitation.",
      "Guardian already invited"),
    E("guardian_invitation_not_found", 404, "This invitation link is not valid.", "Invitation not found"),
    E("guardian_invitation_expired", 409, "This invitation has expired; ask for a new one.", "Invitation expired"),
    E("guardian_invitation_used", 409, "This invitation was already answered.", "Invitation used"),
    E("guardian_invitation_wrong_account", 403, "Sign in with the email address this invitation was sent to.",
      "Invitation for another account"),
    E("guardian_not_found", 404, "No such guardian.", "Guardian not found"),
    E("guardian_change_pending", 409, "A change of this guardian is already waiting to take effect.",
      "Guardian change pending"),
    E("guardian_change_not_pending", 409, "This guardian has no change waiting to take effect.",
      "No guardian change pending"),
    E("guardian_cancel_passkey_required", 403, "This guardian change is already written on your wallet and anyone "
      "can complete it there when it is due: cancel it with your passkey.", "Cancel needs the owner's passkey"),
    E("guardian_confirmation_not_needed", 409, "This guardian is not waiting for your passkey confirmation.",
      "No confirmation needed"),
    E("guardian_change_in_flight", 409, "A guardian change is being written on your wallet right now; try again "
      "in a minute.", "Guardian change in flight"),
    E("recovery_threshold_invalid", 400, "Choose a number of approvals between 1 and your number of guardians.",
      "Invalid threshold"),
    E("recovery_timelock_out_of_range", 400, "The timelock is outside the range this service allows.",
      "Timelock out of range"),
    E("recovery_identifier_required", 400, "Enter your account's email address or phone number.",
      "Email or phone required"),
    E("recovery_code_invalid", 400, "That code is not right.", "Invalid code"),
    E("recovery_code_expired", 400, "That code has expired; start again.", "Code expired"),
    E("recovery_not_verifying", 409, "This recovery is not waiting for a code or a new passkey.",
      "Recovery not verifying"),
    E("recovery_request_not_found", 404, "No such recovery request.", "Recovery request not found"),
    E("recovery_not_collecting", 409, "This recovery is not waiting for guardians any more.",
      "Recovery not waiting for guardians"),
    E("recovery_not_guardian", 403, "You are not a guardian of this account.", "Not a guardian"),
    E("recovery_already_approved", 409, "You already approved this recovery.", "Already approved"),
    E("recovery_approval_not_found", 404, "You have no approval of this recovery to withdraw.",
      "Approval not found"),
    E("guardian_passkey_required", 403, "This recovery has started on the wallet: withdraw with your passkey, "
      "so that it is withdrawn there too.", "Guardian passkey required"),
    E("recovery_chain_busy", 409, "This recovery is being written on the wallet right now; try again in a minute.",
      "Recovery busy on-chain"),
    E("recovery_not_cancellable", 409, "This recovery can no longer be cancelled.", "Recovery not cancellable"),
    E("recovery_cancel_link_invalid", 400, "This cancel link is not valid any more.", "Cancel link invalid"),
    E("recovery_payments_held", 409, "Outgoing payments are held while a recovery of this account is pending. "
      "If you did not ask for it, cancel it.", "Payments held during recovery"),
    # --- relayer (fee sponsorship) ---
    E("transaction_not_allowed", 400, "The relayer does not sponsor this transaction.", "Transaction not allowed"),
    E("fee_payer_cap_exceeded", 400, "This transaction could cost the relayer more than its per-transaction limit.",
      "Fee payer cap exceeded"),
    E("sponsorship_budget_exceeded", 429, "You have used today's free network fees. Please try again tomorrow "
      "(the allowance resets at 00:00 UTC).", "Sponsorship budget exceeded"),
    E("sponsorship_reference_conflict", 409, "This payment reference belongs to another user.",
      "Sponsorship reference conflict"),
    E("sponsorship_not_reserved", 409, "No sponsorship was reserved for this payment.", "Sponsorship not reserved"),
    E("sponsorship_closed", 409, "This payment's sponsorship is already closed.", "Sponsorship closed"),
    # --- the chain ---
    E("chain_unavailable", 503, "The Solana network is not reachable right now. Please try again shortly.",
      "Chain unavailable"),
    E("chain_request_failed", 502, "The Solana network refused the request.", "Chain request failed"),
)
del E


def error_code(code: str) -> ErrorCode:
    """The registry entry of ``code``.

    :raises LookupError: ``code`` is not registered (a programming error: register it in :data:`REGISTRY`).
    """
    try:
        return REGISTRY[code]
    except KeyError:
        raise LookupError(f"Error code {code!r} is not registered in numpay.core.errors.REGISTRY") from None


def codes_with_status(*codes: str) -> dict[int, list[str]]:
    """Group registered ``codes`` by HTTP status (for documenting an endpoint), each list in the given order.

    :raises LookupError: a code is not registered.
    """
    grouped: dict[int, list[str]] = {}
    for code in codes:
        entry = error_code(code)
        if code not in grouped.setdefault(entry.status, []):
            grouped[entry.status].append(code)
    return dict(sorted(grouped.items()))


class ApplicationError(Exception):
    """A refusal or failure that a user or client can act on.

    :param code: a code registered in :data:`REGISTRY`, e.g. ``"insufficient_funds"``.
    :param message: a plain-words sentence for people (never secrets); defaults to the registry's.
    :param status: the HTTP status; it is the registry's, so giving it is only an assertion.
    :param extra: extra JSON-serialisable fields added to the problem details (e.g. ``{"field": "amount"}``).
    :raises LookupError: ``code`` is not registered.
    :raises ValueError: ``status`` (or the subclass's ``expected_status``) disagrees with the registry.
    """

    #: a subclass for one status class (e.g. 404) refuses codes registered with another status.
    expected_status: int | None = None

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 extra: dict[str, Any] | None = None):
        entry = error_code(code)
        for claimed in (status, self.expected_status):
            if claimed is not None and claimed != entry.status:
                raise ValueError(f"Error code {code!r} is registered with status {entry.status}, not {claimed}")
        self.code = code
        self.message = message or entry.message
        self.status = entry.status
        self.title = entry.title
        self.extra = extra or {}
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by state (subclasses have other constructor signatures; Celery and multiprocessing pickle)."""
        return _rebuild, (type(self), self.__dict__.copy())


def _rebuild(cls: type[ApplicationError], state: dict[str, Any]) -> ApplicationError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class NotFoundError(ApplicationError):
    """The object does not exist or belongs to someone else (both are 404: no existence oracle)."""

    expected_status = 404


class ConflictError(ApplicationError):
    """The request conflicts with current state (HTTP 409)."""

    expected_status = 409


class UnprocessableError(ApplicationError):
    """Well-formed but cannot be processed, e.g. an Idempotency-Key reused with another body (HTTP 422)."""

    expected_status = 422


class ChainUnavailableError(ApplicationError):
    """The Solana RPC endpoint could not be reached after retries (HTTP 503); safe to retry later."""

    def __init__(self, message: str | None = None):
        super().__init__("chain_unavailable", message)


class ChainRequestError(ApplicationError):
    """The Solana RPC endpoint answered with a JSON-RPC error (terminal for this request).

    :param rpc_code: the JSON-RPC error code (e.g. -32002 preflight failure).
    """

    def __init__(self, message: str, *, rpc_code: int | None = None, data: Any = None):
        super().__init__("chain_request_failed", message)
        self.rpc_code = rpc_code
        self.data = data


def problem_body(error: ApplicationError) -> dict[str, Any]:
    """Problem details (RFC 9457) of ``error``: ``{type, title, status, detail, code, ...extra}``."""
    body: dict[str, Any] = {"type": f"https://numpay.dev/errors/{error.code}", "title": error.title,
                            "status": error.status, "detail": error.message, "code": error.code}
    body.update(error.extra)
    return body
