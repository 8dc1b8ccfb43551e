"""An owner passkey added later gets the first passkey's on-chain limits (payments/passkey_limits.py), on the real
localnet with the real wallet program: the addition carries them (add_authority, then one passkey-approved
set_limits per mint, each approved by the owner passkey over its own challenge at nonce, nonce+1, ...; the parts
that do not fit the first transaction held until it landed), so once the first passkey is removed the second one
alone approves a payment above the custody key's caps. Refusals (an approval missing, one over the wrong nonce,
another user's passkey) change nothing. A wallet whose added owner has no limits gets them with "Let this passkey
approve payments on its own"."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection, transaction
from django.utils import timezone
from solders.pubkey import Pubkey

from accounts.models import PasskeyState, User
from numpay.core.solana import get_chain_client
from numpay.core.transactions import assemble, compile_message
from payments.models import Payment, SpendingPolicy, WalletProtection
from payments.passkey_limits import (
    approver_for,
    challenges,
    passkey_limits_submit,
    store_chain,
    verify_all,
    wanted_limits,
)
from payments.passkey_owners import addition_action, passkey_owner_add
from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
from payments.transactions import payment_execute_instruction
from relayer import services as relayer
from wallets.lock_objects import wallet_qs_select_for_update
from wallets.program import PasskeyAssertion, approval_challenge, approve_with_passkeys
from wallets.smart import token_program_mint, wallet_config_read, wallet_program_id

from .helpers import wait_until
from .payments_support import ApiUser, sol_balance, wait_terminal
from .races import postgresql_only, wait_for_lock_waiters
from .test_passkey_owners import _attribute, _browser_session
from .test_payment_approvals import approve, awaiting, options_for
from .test_protected_mode import approve_all, compressed, register
from .webauthn_support import b64u, unb64u

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]
SOL = 1_000_000_000


def _done(alice: ApiUser, change: dict[str, Any]) -> dict[str, Any]:
    assert wait_until(lambda: alice.get(change["status_url"]).json()["status"] not in ("signed", "submitted"),
                      timeout=90)
    return alice.get(change["status_url"]).json()


def _limits(config: Any, key: bytes, tokens: dict[str, Any]) -> dict[str, Any]:
    """The key's on-chain limits per token symbol: (per transaction, per period, period seconds) or None."""
    result = {}
    for symbol, token in tokens.items():
        entry = config.limit(key, token_program_mint(token))
        result[symbol] = None if entry is None else (entry.per_transaction_cap, entry.period_cap,
                                                     entry.period_seconds)
    return result


def _snapshot(user: User) -> tuple[Any, ...]:
    """What a refusal must leave as it was: the config (authorities, limits, nonce), the DB's owner changes."""
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    return (config.nonce, sorted((bytes(entry.key), entry.permissions) for entry in config.authorities),
            sorted((bytes(entry.authority), str(entry.mint), entry.per_transaction_cap, entry.period_cap)
                   for entry in config.limits),
            sorted(WalletProtection.objects.filter(wallet=user.wallet).values_list("kind", "status",
                                                                                   "authenticator_id")))


def _protected(tokens: dict[str, Any], prefix: str = "alice") -> tuple[ApiUser, User, Any, Any, int, int]:
    """Alice with a wallet protected by the laptop's passkey and the phone's passkey registered (not an owner);
    "passkey above 1 SOL" (the custody key's on-chain cap per payment). :returns: (api user, user, laptop, phone,
    laptop pk, phone pk)."""
    SpendingPolicy.objects.get_or_create(name="Passkey above 1 SOL", scope="default", token=tokens["SOL"],
                                         defaults={"passkey_above": SOL})
    alice = ApiUser(f"{prefix}-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    phone = register(alice, "Phone")
    laptop_id = Authenticator.objects.get(user=user, data__name="Laptop").pk
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    return alice, user, laptop, phone, laptop_id, phone_id


def _pay_with(alice: ApiUser, bob: ApiUser, passkey: Any, amount: str) -> str:
    payment_id = awaiting(alice, bob, amount, symbol="SOL")
    response = approve(alice, payment_id, passkey.get(options_for(alice, payment_id).json()["public_key"]))
    assert response.status_code == 200, response.content
    return payment_id


def test_an_added_owner_gets_the_first_ones_limits_and_alone_approves_a_payment_once_the_first_is_removed(
        celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet protected by the laptop's passkey (the custody key capped at 1 SOL), and the phone registered
    alice, user, laptop, phone, laptop_id, phone_id = _protected(tokens)
    alice.faucet("SOL", "5")
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    client = get_chain_client()
    before = wallet_config_read(client=client, wallet=user.wallet)
    # when she makes the phone an owner: the options ask for one approval per action, each at the next nonce
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {}).json()
    mints = len(wanted_limits(wallet=user.wallet))
    assert mints == len(tokens)
    assert len(body["approvals"]) == 1 + mints
    assert body["public_key"] == body["approvals"][0]
    assert body["nonce"] == before.nonce
    assert len({entry["challenge"] for entry in body["approvals"]}) == 1 + mints
    added = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner", {
        "credentials": approve_all(laptop, body), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert added.status_code == 202, added.content
    # then the whole change lands (in as many transactions as it needs: the later ones after the first landed)
    status = _done(alice, added.json())
    assert (status["status"], status["error_message"], status["landed"]) == ("confirmed", "", status["parts"])
    assert status["parts"] == 2  # with two mints the three approved actions do not fit one transaction (1,232 B)
    rows = WalletProtection.objects.filter(wallet=user.wallet, authenticator_id=phone_id).order_by("created_at")
    assert [row.kind for row in rows] == ["add_passkey"] + ["passkey_limits"] * (status["parts"] - 1)
    assert [row.status for row in rows] == ["confirmed"] * status["parts"]
    if status["parts"] > 1:  # each later part landed after the one before
        assert all(earlier.slot < later.slot for earlier, later in zip(rows, rows[1:], strict=False))
    # and on-chain the phone is an owner with exactly the laptop's limits, the nonce moved once per approval
    config = wallet_config_read(client=client, wallet=user.wallet)
    assert config.nonce == before.nonce + 1 + mints
    assert _limits(config, compressed(phone), tokens) == _limits(config, compressed(laptop), tokens)
    assert None not in _limits(config, compressed(phone), tokens).values()

    # when the laptop is lost: the phone approves its removal
    removal_body = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/removal-options", {}).json()
    removal = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/removal", {
        "credential": phone.get(removal_body["public_key"]), "nonce": removal_body["nonce"],
        "expires_at": removal_body["expires_at"]})
    assert removal.status_code == 202, removal.content
    assert wait_until(lambda: WalletProtection.objects.get(pk=removal.json()["id"]).status == "confirmed", timeout=60)
    assert onchain_passkey_ids(user.wallet) == {phone_id}
    # and she pays 2 SOL (above the custody key's 1 SOL cap) approved by the phone alone
    bob_before = sol_balance(bob.address)
    payment_id = _pay_with(alice, bob, phone, "2")
    # then it lands
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    assert sol_balance(bob.address) == bob_before + 2 * SOL


def test_refused_owner_additions_change_nothing(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a protected wallet, the phone registered, and Bob with a passkey of his own
    alice, user, laptop, phone, laptop_id, phone_id = _protected(tokens)
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    bobs = register(bob, "Bob's")
    before = _snapshot(user)
    counter = PasskeyState.objects.filter(authenticator_id=laptop_id).values_list("sign_count", flat=True).first()
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {}).json()
    all_of_them = approve_all(laptop, body)

    def add(credentials: list[dict[str, Any]]) -> Any:
        return alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner", {
            "credentials": credentials, "nonce": body["nonce"], "expires_at": body["expires_at"]})

    # when one approval is missing
    missing = add(all_of_them[:-1])
    # then it is refused
    assert (missing.status_code, missing.json()["code"]) == (400, "passkey_assertion_invalid")
    # when two approvals are swapped (the first one is over the challenge at nonce + 1)
    swapped = add([all_of_them[1], all_of_them[0], *all_of_them[2:]])
    assert (swapped.status_code, swapped.json()["code"]) == (400, "passkey_assertion_invalid")
    # when the last one is over the challenge at a wrong nonce (the one after the chain)
    wrong = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {}).json()
    assert wrong["nonce"] == body["nonce"]
    extra = challenges(wallet=user.wallet, actions=[addition_action(wallet=user.wallet, public_key=compressed(phone))],
                       nonce=body["nonce"] + len(body["approvals"]), expires_at=body["expires_at"])[0]
    off_by = add([*all_of_them[:-1], laptop.get({**body["approvals"][-1], "challenge": b64u(extra)})])
    assert (off_by.status_code, off_by.json()["code"]) == (400, "passkey_assertion_invalid")
    # when Bob's passkey approves every step
    by_bob = add(approve_all(bobs, body))
    assert (by_bob.status_code, by_bob.json()["code"]) == (400, "passkey_unknown")
    # when the approvals come from two passkeys (the laptop, then the phone, not an owner yet)
    mixed = add([all_of_them[0], *approve_all(phone, body)[1:]])
    assert (mixed.status_code, mixed.json()["code"]) == (400, "passkey_assertion_invalid")
    # then nothing changed on-chain or in the DB, and the laptop's counter was not advanced by a refusal
    assert _snapshot(user) == before
    assert PasskeyState.objects.filter(authenticator_id=laptop_id).values_list("sign_count", flat=True).first() == \
        counter
    # and Bob cannot read a change of hers
    good = add(all_of_them)
    assert good.status_code == 202, good.content
    hidden = bob.get(good.json()["status_url"])
    assert (hidden.status_code, hidden.json()["code"]) == (404, "passkey_change_not_found")
    assert _done(alice, good.json())["status"] == "confirmed"


def _add_without_limits(user: User, laptop: Any, phone_id: int) -> None:
    """Make the phone an owner the way it was done before owners got limits: the add_authority alone."""
    client = get_chain_client()
    phone = Authenticator.objects.get(pk=phone_id)
    key = compressed_of(phone)
    nonce = wallet_config_read(client=client, wallet=user.wallet).nonce
    expires_at = int(timezone.now().timestamp()) + 120
    actions = [addition_action(wallet=user.wallet, public_key=key)]
    credentials = [laptop.get({"challenge": b64u(challenge)}) for challenge in challenges(
        wallet=user.wallet, actions=actions, nonce=nonce, expires_at=expires_at)]
    approver = approver_for(user=user, wallet=user.wallet, credentials=credentials)
    with transaction.atomic():
        wallet = wallet_qs_select_for_update().get(pk=user.wallet.pk)
        approvals = verify_all(approver=approver, credentials=credentials, challenge_list=challenges(
            wallet=wallet, actions=actions, nonce=nonce, expires_at=expires_at))
        row = store_chain(kind=WalletProtection.Kind.ADD_PASSKEY, wallet=wallet, authenticator=phone, public_key=key,
                          approver=approver, kinds=[("add_authority", None)], actions=actions, approvals=approvals,
                          expires_at=expires_at, client=client)
    assert wait_until(lambda: WalletProtection.objects.get(pk=row.pk).status == "confirmed", timeout=60)
    assert datetime.fromtimestamp(expires_at, tz=UTC) == WalletProtection.objects.get(pk=row.pk).approval_expires_at


def compressed_of(authenticator: Any) -> bytes:
    from payments.passkey_owners import _compressed

    return _compressed(authenticator)


def test_an_owner_passkey_without_limits_gets_them_and_then_approves_alone(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet owned by the laptop and by the phone, made an owner before owners got limits (none on-chain)
    alice, user, laptop, phone, laptop_id, phone_id = _protected(tokens)
    alice.faucet("SOL", "5")
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    _add_without_limits(user, laptop, phone_id)
    client = get_chain_client()
    config = wallet_config_read(client=client, wallet=user.wallet)
    assert set(_limits(config, compressed(phone), tokens).values()) == {None}
    # when she opens the account page: the phone (an owner without limits) offers "Let this passkey approve
    # payments on its own", the laptop (the first passkey, with its limits) does not
    browser = _browser_session(alice.email)
    page = browser.get("/accounts/methods/").content.decode()
    assert "Let this passkey approve payments on its own</button>" in page
    assert _attribute(page, "passkey-give-limits", "data-options-url") == [
        f"/api/v1/wallet/passkeys/{phone_id}/limits-options"]
    assert _attribute(page, "passkey-give-limits", "data-limits-url") == [f"/api/v1/wallet/passkeys/{phone_id}/limits"]
    # when she asks for it through the API, approved by the laptop (one approval per mint)
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/limits-options", {})
    assert body.status_code == 201, body.content
    body = body.json()
    assert len(body["approvals"]) == len(tokens)
    assert body["nonce"] == config.nonce
    # (one approval missing is refused, nothing changes)
    before = _snapshot(user)
    short = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/limits", {
        "credentials": approve_all(laptop, body)[:-1], "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert (short.status_code, short.json()["code"]) == (400, "passkey_assertion_invalid")
    assert _snapshot(user) == before
    done = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/limits", {
        "credentials": approve_all(laptop, body), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert done.status_code == 202, done.content
    # then it lands: the phone has the laptop's limits, the nonce moved once per approval
    assert _done(alice, done.json())["status"] == "confirmed"
    config = wallet_config_read(client=client, wallet=user.wallet)
    assert _limits(config, compressed(phone), tokens) == _limits(config, compressed(laptop), tokens)
    assert config.nonce == body["nonce"] + len(tokens)
    # and asking again is refused: nothing to write
    again = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/limits-options", {})
    assert (again.status_code, again.json()["code"]) == (409, "passkey_limits_in_place")
    assert 'data-testid="passkey-give-limits"' not in browser.get("/accounts/methods/").content.decode()
    # (the laptop, the first passkey, is refused likewise: its limits are in place)
    first = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/limits-options", {})
    assert (first.status_code, first.json()["code"]) == (409, "passkey_limits_in_place")
    # and once the laptop is taken off, the phone alone approves 2 SOL (above the custody key's cap) and it lands
    removal_body = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/removal-options", {}).json()
    removal = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/removal", {
        "credential": phone.get(removal_body["public_key"]), "nonce": removal_body["nonce"],
        "expires_at": removal_body["expires_at"]})
    assert removal.status_code == 202, removal.content
    assert wait_until(lambda: WalletProtection.objects.get(pk=removal.json()["id"]).status == "confirmed", timeout=60)
    payment_id = _pay_with(alice, bob, phone, "2")
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    assert Payment.objects.get(pk=payment_id).amount == 2 * SOL


def test_when_the_first_part_fails_the_held_part_is_never_sent_and_fails_with_the_reason(
        celery_worker, tokens) -> None:  # noqa: ANN001
    # given a protected wallet with 1 SOL, the phone registered, and the laptop's approvals of making it an owner
    alice, user, laptop, phone, laptop_id, phone_id = _protected(tokens)
    alice.faucet("SOL", "1")
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    client = get_chain_client()
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {}).json()
    credentials = approve_all(laptop, body)
    # when the addition is stored (not sent before it commits) and meanwhile the laptop's approval of a payment
    # lands on-chain at the same nonce (so the addition's first transaction can no longer land)
    with transaction.atomic():
        first = passkey_owner_add(user=user, authenticator_id=phone_id, credentials=credentials, nonce=body["nonce"],
                                  expires_at=body["expires_at"])
        held = WalletProtection.objects.get(wallet=user.wallet, status="held")
        fee_payer = relayer.fee_payer_pubkey()
        forged = Payment(id=uuid.uuid4(), wallet=user.wallet, recipient_address=bob.address, token=tokens["SOL"],
                         amount=SOL // 10, network_fee=0, creates_recipient_token_account=False)
        action = payment_execute_instruction(payment=forged, fee_payer=fee_payer)
        expires_at = int(timezone.now().timestamp()) + 120
        signed = laptop.get({"challenge": b64u(approval_challenge(
            wallet_program_id(), Pubkey.from_string(user.wallet.config_address), body["nonce"], expires_at, action))})
        assertion = PasskeyAssertion(public_key=compressed(laptop), authenticator_data=unb64u(
            signed["response"]["authenticatorData"]), client_data_json=unb64u(signed["response"]["clientDataJSON"]),
            signature=unb64u(signed["response"]["signature"]))
        message = compile_message(instructions=approve_with_passkeys(action, [assertion], expires_at=expires_at),
                                  fee_payer=fee_payer, blockhash=client.latest_blockhash().blockhash)
        client.send_raw_transaction(bytes(assemble(message=message, signatures={
            fee_payer: relayer.relayer_cosign(user=user, message=message, reference=forged.id).signature})))
        assert wait_until(lambda: wallet_config_read(client=client, wallet=user.wallet).nonce == body["nonce"] + 1,
                          timeout=30)
    # then the addition's first transaction fails, and the held part is failed with the reason, never sent
    status = _done(alice, {"status_url": f"/api/v1/wallet/passkey-changes/{first.id}"})
    assert status["status"] == "failed"
    assert status["landed"] == 0
    held.refresh_from_db()
    assert (held.status, held.error_message) == (
        "failed", "The change before it did not reach the network, so this one was not sent.")
    assert not held.attempts.exclude(last_sent_at=None).exists()
    # and nothing of it is on-chain: the phone is not an authority, the nonce moved only by the payment
    config = wallet_config_read(client=client, wallet=user.wallet)
    assert config.authority(compressed(phone)) is None
    assert config.nonce == body["nonce"] + 1
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
    # and a new addition can start (nothing pending)
    assert alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {}).status_code == 201


@postgresql_only
def test_the_same_limits_approved_twice_at_once_are_written_once(celery_worker, tokens) -> None:  # noqa: ANN001
    # given an owner passkey without limits and the laptop's approvals of its limits, sent twice at once
    alice, user, laptop, phone, laptop_id, phone_id = _protected(tokens)
    _add_without_limits(user, laptop, phone_id)
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/limits-options", {}).json()
    credentials = approve_all(laptop, body)
    outcome: dict[str, Any] = {}

    def submit() -> None:
        try:
            response = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/limits", {
                "credentials": credentials, "nonce": body["nonce"], "expires_at": body["expires_at"]})
            outcome["second"] = (response.status_code, response.json().get("code"))
        finally:
            connection.close()

    # when the first holds the wallet's lock while the second arrives
    thread = threading.Thread(target=submit)
    with transaction.atomic():
        wallet_qs_select_for_update().get(user=user)
        thread.start()
        assert wait_for_lock_waiters(1, give_up_when=lambda: not thread.is_alive())
        first = passkey_limits_submit(user=user, authenticator_id=phone_id, credentials=credentials,
                                      nonce=body["nonce"], expires_at=body["expires_at"])
    thread.join()
    # then the second, decided after the first committed, is refused; the limits are written once
    assert outcome == {"second": (409, "wallet_change_pending")}
    assert _done(alice, {"status_url": f"/api/v1/wallet/passkey-changes/{first.id}"})["status"] == "confirmed"
    assert WalletProtection.objects.filter(wallet=user.wallet, kind="passkey_limits").count() == 1
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    assert _limits(config, compressed(phone), tokens) == _limits(config, compressed(laptop), tokens)
    assert config.nonce == body["nonce"] + len(tokens)
