"""Guardian changes of a wallet in protected mode, written on-chain with the real parts: localnet with the real
wallet program, a Celery worker and beat, the relayer's outbox, software passkeys. The owner's passkey approves
each change as the program's delayed ``guardians_propose``; beat applies it once the chain's delay passed
(docs/wallet-program.md "12–14 Guardian changes"; recovery/services/onchain_guardians.py)."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from numpay.core.solana import get_chain_client
from recovery import digests, services
from recovery.models import Guardian, GuardianInvitation, GuardianSyncAttempt, RecoveryRequest, RecoverySetup
from recovery.passkeys import authenticator_key
from tests.helpers import wait_until
from tests.recovery_support import invitation_token, owner_sign, person, recovery_outbox, sign, start_collecting
from wallets.program import ProgramErrorCode
from wallets.program.instructions import PERMISSION_GUARDIAN, PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_config_read

DELAY = 20  # seconds: the on-chain guardian change delay of these wallets (the steps between a proposal and
# the next change take a few seconds, well within it)


@pytest.fixture(autouse=True)
def _delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = DELAY
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1
    settings.NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS = 2


def _config(owner: Any) -> Any:
    return wallet_config_read(client=get_chain_client(), wallet=owner.user.wallet)


def _chain_guardians(owner: Any) -> set[bytes]:
    return {bytes(e.key) for e in _config(owner).authorities if e.permissions == PERMISSION_GUARDIAN}


def _key(who: Any) -> bytes:
    return authenticator_key(Authenticator.objects.get(user=who.user))


def _send(instructions: list[Any], *, custody_of: Any = None) -> int | None:
    """Send ``instructions`` paid (and signed) by the relayer's fee payer, plus the custody key of the wallet
    ``custody_of``; the program's error code of a refusal, or ``None`` once it landed."""
    from numpay.core.solana import PreflightFailure
    from numpay.core.transactions import assemble, compile_message
    from relayer.signer import get_fee_payer
    from wallets.services import wallet_sign

    payer, client = get_fee_payer(), get_chain_client()
    message = compile_message(instructions=instructions, fee_payer=payer.pubkey(),
                              blockhash=client.latest_blockhash().blockhash)
    signatures = {payer.pubkey(): payer.sign_message(bytes(message))}
    if custody_of is not None:
        signatures[Pubkey.from_string(custody_of.signing_address)] = wallet_sign(wallet=custody_of,
                                                                                 message=bytes(message))
    try:
        signature = client.send_raw_transaction(bytes(assemble(message=message, signatures=signatures)),
                                                skip_preflight=False)
    except PreflightFailure as failure:
        return failure.err["InstructionError"][1]["Custom"]

    def landed() -> bool:
        status = client.signature_statuses([signature])[0]
        return status is not None and status.err is None and client.is_at_commitment(status)

    assert wait_until(landed, timeout=30)
    return None


def _protected_owner(make_user: Any, *, delay: int = DELAY) -> Any:
    """An owner whose wallet is in protected mode: the custody key (still owner) writes the recovery settings
    (with the guardian change delay), adds the owner's passkey as owner and keeps only ``spend``."""
    from wallets.program import SOL_MINT, Authority, Limit, add_authority, set_limits, set_permissions
    from wallets.smart import wallet_program_id

    owner = person(make_user, "owner@example.com")
    wallet = owner.user.wallet
    setup = services.recovery_setup(user=owner.user)
    with transaction.atomic():
        services.sync.sync_mark_locked(setup)

    def synced() -> bool:
        setup.refresh_from_db()
        return setup.chain_sync == "" and setup.chain_synced_version == setup.chain_sync_version

    assert wait_until(synced, timeout=60), setup.chain_sync_error
    assert _config(owner).guardian_change_delay == delay
    program, custody = wallet_program_id(), Pubkey.from_string(wallet.signing_address)
    key = _key(owner)
    assert _send([
        add_authority(program, custody, custody, Authority.passkey(key, PERMISSION_MANAGE | PERMISSION_SPEND)),
        set_limits(program, custody, custody, key, Limit(SOL_MINT, 10**9, 10**9)),
        set_permissions(program, custody, custody, custody, PERMISSION_SPEND)], custody_of=wallet) is None
    return owner


def _accepted(owner: Any, guardian: Any) -> Guardian:
    email = guardian.user.email
    services.guardian_invite(owner=owner.user, email=email, credential=owner_sign(owner, action="invite",
                                                                                  subject=email))
    token = invitation_token(email)
    invitation = GuardianInvitation.objects.get(token_hash=services.requests.secret_hash(token))
    return services.guardian_invitation_accept(token=token, user=guardian.user,
                                               credential=sign(guardian, digests.invitation_challenge(invitation.id)))


def _owner_approves(owner: Any, guardian: Guardian, purpose: str) -> None:
    options = services.guardian_change_options(owner=owner.user, purpose=purpose, guardian_id=guardian.pk)
    services.guardian_change_approve(owner=owner.user, purpose=purpose, guardian_id=guardian.pk,
                                     credential=owner.soft.get(options["publicKey"]))


def _setup(owner: Any) -> RecoverySetup:
    return RecoverySetup.objects.get(user=owner.user)


def _wait_proposed(owner: Any, keys: list[bytes], threshold: int) -> None:
    """Wait until the owner's proposal of ``keys`` landed and beat read its effective_at."""
    from recovery import chain

    def proposed() -> bool:
        setup, config = _setup(owner), _config(owner)
        return (setup.chain_change_step == "apply" and setup.chain_change_effective_at is not None
                and config.guardian_change_pending
                and bytes(config.guardian_change_hash) == chain.change_hash(keys, threshold))

    assert wait_until(proposed, timeout=60), (_setup(owner).chain_sync, _setup(owner).chain_sync_error)


def _recovery_start_by(owner: Any, guardian: Any) -> int | None:
    """A ``recovery_start`` approved by ``guardian``'s passkey at the wallet's nonce, sent by the test."""
    from django.utils import timezone

    from tests.webauthn_support import b64u, unb64u
    from wallets.program import PasskeyAssertion, approval_challenge, approve_with_passkeys, recovery_start
    from wallets.program.approvals import INSTRUCTIONS_SYSVAR_ID
    from wallets.smart import wallet_program_id

    wallet = owner.user.wallet
    program, custody = wallet_program_id(), Pubkey.from_string(wallet.signing_address)
    action = recovery_start(program, custody, INSTRUCTIONS_SYSVAR_ID, _fresh_p256_key())
    expires_at = int(timezone.now().timestamp()) + 300
    challenge = approval_challenge(program, Pubkey.from_string(wallet.config_address), _config(owner).nonce,
                                   expires_at, action)
    answer = guardian.soft.get({"challenge": b64u(challenge), "rpId": "localhost"})
    assertion = PasskeyAssertion(_key(guardian), unb64u(answer["response"]["authenticatorData"]),
                                 unb64u(answer["response"]["clientDataJSON"]), unb64u(answer["response"]["signature"]))
    return _send(approve_with_passkeys(action, [assertion], expires_at=expires_at))


def _fresh_p256_key() -> bytes:
    """A new compressed P-256 public key (33 bytes)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.X962,
                                                                             PublicFormat.CompressedPoint)


def test_a_protected_wallets_guardians_are_written_on_chain_after_the_delay_and_recover_it(
        celery_worker: Any, make_user: Any) -> None:
    from recovery import chain

    owner = _protected_owner(make_user)
    g1, g2, g3 = (person(make_user, f"guardian{n}@example.com") for n in range(1, 4))

    # --- additions: each accepted guardian waits for the owner's passkey
    first = _accepted(owner, g1)
    assert (first.status, first.change_on_chain, first.change_effective_at) == ("pending", True, None)
    assert any(m.subject == "Confirm guardian1@example.com as your guardian with your passkey" for m in recovery_outbox())
    api = Client()
    api.force_login(owner.user)
    overview = api.get("/api/v1/recovery").json()
    assert [(g["email"], g["needs_owner_confirmation"]) for g in overview["guardians"]] == [
        ("guardian1@example.com", True)]
    assert b"Confirm with your passkey" in api.get("/recovery/guardians/").content
    # nothing is written on-chain without the owner's confirmation
    assert _chain_guardians(owner) == set()
    _owner_approves(owner, first, "confirm")
    _wait_proposed(owner, [_key(g1)], 1)
    second = _accepted(owner, g2)
    _owner_approves(owner, second, "confirm")
    _wait_proposed(owner, [_key(g1), _key(g2)], 2)
    # the chain refuses to apply it before its delay; the guardians are pending until then
    assert _send(chain.apply_instructions(wallet=owner.user.wallet, keys=[_key(g1), _key(g2)], threshold=2)) == (
        ProgramErrorCode.GUARDIAN_CHANGE_NOT_READY)
    assert _chain_guardians(owner) == set()
    effective_at = _setup(owner).chain_change_effective_at
    assert set(Guardian.objects.filter(owner=owner.user).values_list("status", "change_effective_at")) == {
        ("pending", effective_at)}
    assert effective_at.timestamp() == _config(owner).guardian_change_effective_at
    # after the delay beat applies it: both active, on-chain with a majority threshold
    assert wait_until(lambda: set(Guardian.objects.filter(owner=owner.user).values_list("status", flat=True)) == {
        "active"}, timeout=90), _setup(owner).chain_sync_error
    config = _config(owner)
    assert _chain_guardians(owner) == {_key(g1), _key(g2)}
    assert (config.guardian_threshold, config.guardian_change_pending) == (2, False)
    assert GuardianSyncAttempt.objects.filter(setup=_setup(owner), status="landed").count() >= 3

    # --- removal: the owner's removal ceremony is the on-chain proposal without g2; it counts until applied
    second.refresh_from_db()
    options = services.owner_change_options(owner=owner.user, action="remove", subject=str(second.pk))
    services.guardian_remove(owner=owner.user, guardian_id=second.pk, credential=owner.soft.get(options["publicKey"]))
    _wait_proposed(owner, [_key(g1)], 1)
    second.refresh_from_db()
    assert (second.status, second.change_effective_at) == ("active", _setup(owner).chain_change_effective_at)
    assert wait_until(lambda: Guardian.objects.get(pk=second.pk).status == "removed", timeout=90)
    assert _chain_guardians(owner) == {_key(g1)}
    assert _config(owner).guardian_threshold == 1
    # the removed guardian's on-chain approval is refused
    assert _recovery_start_by(owner, g2) == ProgramErrorCode.UNKNOWN_AUTHORITY

    # --- cancel: a confirmed addition can only be stopped by the owner's passkey; the chain stays as it was
    third = _accepted(owner, g3)
    _owner_approves(owner, third, "confirm")
    _wait_proposed(owner, [_key(g1), _key(g3)], 2)
    before = (_config(owner), Guardian.objects.get(pk=third.pk).__dict__.copy(), _setup(owner).chain_change)
    with pytest.raises(ApplicationError) as refused:
        services.guardian_change_cancel(owner=owner.user, guardian_id=third.pk)
    assert refused.value.code == "guardian_cancel_passkey_required"
    page = api.post(f"/recovery/guardians/{third.pk}/cancel-change/", follow=True)
    assert b"cancel it with your passkey" in page.content
    response = api.post(f"/api/v1/recovery/guardians/{third.pk}/cancel-change", {}, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (403, "guardian_cancel_passkey_required")
    after_state = Guardian.objects.get(pk=third.pk).__dict__.copy()
    before[1].pop("_state"), after_state.pop("_state")
    assert (_config(owner), after_state, _setup(owner).chain_change) == before
    _owner_approves(owner, third, "cancel")
    # the database cancels it once the cancel lands on-chain ("cancelling" until then)
    assert wait_until(lambda: Guardian.objects.get(pk=third.pk).status == "cancelled", timeout=60)

    def cancelled_on_chain() -> bool:
        setup = _setup(owner)
        return setup.chain_change_step == "" and setup.chain_sync == "" and not _config(owner).guardian_change_pending

    assert wait_until(cancelled_on_chain, timeout=60), _setup(owner).chain_sync_error
    assert _chain_guardians(owner) == {_key(g1)}
    assert _config(owner).guardian_threshold == 1

    # --- the rules: the owner's settings ceremony is the passkey-approved set_settings (timelock 3 s)
    subject = services.settings_subject(threshold=None, timelock_seconds=3, hold_payments=True)
    options = services.owner_change_options(owner=owner.user, action="settings", subject=subject)
    services.recovery_settings_update(owner=owner.user, threshold=None, timelock_seconds=3, hold_payments=True,
                                      credential=owner.soft.get(options["publicKey"]))
    assert wait_until(lambda: _setup(owner).chain_change_step == "" and _config(owner).recovery_timelock == 3,
                      timeout=60), _setup(owner).chain_sync_error
    config = _config(owner)
    assert (config.guardian_threshold, config.guardian_change_delay, _setup(owner).chain_change_step) == (1, DELAY, "")

    # --- a full recovery through the on-chain guardian
    old_key = _key(owner)
    request, _token, _new_soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=g1.user,
                              credential=sign(g1, digests.approval_challenge(request)))
    assert wait_until(lambda: RecoveryRequest.objects.get(pk=request.pk).status == "executed", timeout=120), (
        RecoveryRequest.objects.get(pk=request.pk).end_reason)
    config = _config(owner)
    assert config.authority(bytes(request.pending_public_key)).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
    assert config.authority(old_key) is None
    assert _chain_guardians(owner) == {_key(g1)}


def test_an_approval_over_a_guardian_set_that_changed_since_is_refused_and_changes_nothing(
        celery_worker: Any, make_user: Any, settings: Any) -> None:
    # given a protected wallet (a 30 s guardian change delay: the steps below happen well within it) with two
    # accepted guardians, and the owner's challenges to confirm each, both computed from the same state (each
    # proposes the set with one of them)
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 30
    owner = _protected_owner(make_user, delay=30)
    g1, g2 = (person(make_user, f"guardian{n}@example.com") for n in range(1, 3))
    first, second = _accepted(owner, g1), _accepted(owner, g2)
    options = {guardian.pk: services.guardian_change_options(owner=owner.user, purpose="confirm",
                                                              guardian_id=guardian.pk) for guardian in (first, second)}
    # when the owner answers the first, then the second
    services.guardian_change_approve(owner=owner.user, purpose="confirm", guardian_id=first.pk,
                                     credential=owner.soft.get(options[first.pk]["publicKey"]))
    with pytest.raises(ApplicationError) as refused:
        services.guardian_change_approve(owner=owner.user, purpose="confirm", guardian_id=second.pk,
                                         credential=owner.soft.get(options[second.pk]["publicKey"]))
    # then the second is refused (its proposal would drop the first): ask again; nothing of it was stored
    assert refused.value.code in ("owner_passkey_required", "guardian_change_in_flight")
    second.refresh_from_db()
    assert (second.status, second.owner_confirmed_at) == ("pending", None)
    assert _setup(owner).chain_change["keys"] == [_key(g1).hex()]
    # and the first is proposed on-chain alone
    _wait_proposed(owner, [_key(g1)], 1)
    # when the owner then confirms the second (the proposal of both replaces it) and cancels it with their
    # passkey while the first is still pending: the remaining wanted change (the first alone) is re-proposed
    _owner_approves(owner, Guardian.objects.get(pk=second.pk), "confirm")
    _wait_proposed(owner, [_key(g1), _key(g2)], 2)
    _owner_approves(owner, Guardian.objects.get(pk=second.pk), "cancel")
    _wait_proposed(owner, [_key(g1)], 1)
    assert Guardian.objects.get(pk=second.pk).status == "cancelled"
    # then only the first becomes a guardian on-chain
    assert wait_until(lambda: Guardian.objects.get(pk=first.pk).status == "active", timeout=90)
    assert _chain_guardians(owner) == {_key(g1)}
    assert Guardian.objects.get(pk=second.pk).status == "cancelled"
