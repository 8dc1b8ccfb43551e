"""Taking an owner passkey off a protected wallet (payments/passkey_removals.py) on the real localnet with the real
wallet program: approved by another owner passkey (a lost phone's passkey is never needed), submitted through the
outbox; once it landed the key is no longer an authority on-chain (its payment approvals fail there) and the passkey
can be deleted from the account. Refusals change nothing on-chain or in the DB; two removals at once (each
approved by the other passkey) never leave the wallet without an owner."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection, transaction
from django.utils import timezone
from solders.pubkey import Pubkey

from accounts.models import User
from numpay.core.errors import ApplicationError
from numpay.core.solana import PreflightFailure, get_chain_client
from numpay.core.transactions import assemble, compile_message
from payments.models import Payment, PaymentApproval, SpendingPolicy, WalletProtection
from payments.passkey_removals import (
    passkey_removal_options,
    passkey_removal_submit,
    removal_action,
    removal_instructions,
)
from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
from payments.transactions import payment_execute_instruction
from relayer import outbox
from relayer import services as relayer
from wallets.lock_objects import wallet_qs_select_for_update
from wallets.program import PasskeyAssertion, ProgramErrorCode, approval_challenge, approve_with_passkeys
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.smart import wallet_config_read, wallet_program_id

from .helpers import wait_until
from .payments_support import ApiUser
from .races import postgresql_only, wait_for_lock_waiters
from .test_payment_approvals import APP, approve, awaiting, options_for
from .test_protected_mode import approve_all, compressed, register
from .webauthn_support import b64u, unb64u

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]
JSON = "application/json"
SOL = 1_000_000_000
OWNER = PERMISSION_SPEND | PERMISSION_MANAGE


def _landed(protection_id: Any) -> str:
    assert wait_until(lambda: WalletProtection.objects.get(pk=protection_id).status not in ("signed", "submitted"),
                      timeout=60)
    return WalletProtection.objects.get(pk=protection_id).status


def _two_owners(prefix: str = "alice") -> tuple[ApiUser, User, Any, Any, int, int]:
    """A user whose wallet is owned on-chain by two passkeys: the laptop's (the switch) and the phone's (added,
    approved by the laptop). :returns: (api user, user, laptop, phone, laptop pk, phone pk)."""
    alice = ApiUser(f"{prefix}-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    phone = register(alice, "Phone")
    laptop_id = Authenticator.objects.get(user=user, data__name="Laptop").pk
    phone_id = Authenticator.objects.get(user=user, data__name="Phone").pk
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {}).json()
    added = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner", {
        "credentials": approve_all(laptop, body), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert added.status_code == 202, added.content
    assert wait_until(lambda: alice.get(added.json()["status_url"]).json()["status"] not in ("signed", "submitted"),
                      timeout=60)
    assert alice.get(added.json()["status_url"]).json()["status"] == "confirmed"
    assert onchain_passkey_ids(user.wallet) == {laptop_id, phone_id}
    return alice, user, laptop, phone, laptop_id, phone_id


def _snapshot(user: User) -> tuple[Any, ...]:
    """What a refusal must leave as it was: the config's authorities and nonce, the DB's owner changes."""
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    return (config.nonce, config.joint_threshold, sorted((bytes(entry.key), entry.permissions)
                                                         for entry in config.authorities),
            sorted(WalletProtection.objects.filter(wallet=user.wallet).values_list("kind", "status", "authenticator_id")),
            sorted(Authenticator.objects.filter(user=user).values_list("pk", flat=True)))


def _remove(alice: ApiUser, passkey_id: int, approver: Any, options: dict[str, Any] | None = None) -> Any:
    body = options or alice.post(f"/api/v1/wallet/passkeys/{passkey_id}/removal-options", {}).json()
    return alice.post(f"/api/v1/wallet/passkeys/{passkey_id}/removal", {
        "credential": approver.get(body["public_key"]), "nonce": body["nonce"], "expires_at": body["expires_at"]})


def _delete(alice: ApiUser, passkey_id: int) -> Any:
    return alice.client.delete(f"{APP}/account/authenticators/webauthn", {"authenticators": [passkey_id]},
                               content_type=JSON, HTTP_X_SESSION_TOKEN=alice.token)


def test_a_lost_phones_owner_passkey_is_taken_off_the_wallet_with_the_laptops_approval(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet owned on-chain by the laptop's and the phone's passkeys, and the phone is lost
    alice, user, laptop, phone, laptop_id, phone_id = _two_owners()
    alice.faucet("SOL", "1")
    client = get_chain_client()
    before = wallet_config_read(client=client, wallet=user.wallet)
    assert before.authority(compressed(phone)).permissions == OWNER
    # when she asks to remove the phone's passkey from her wallet
    options = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/removal-options", {})
    assert options.status_code == 201, options.content
    body = options.json()
    assert body["nonce"] == before.nonce
    # then either owner may approve, the other one (the laptop) offered first
    listed = [entry["id"] for entry in body["public_key"]["allowCredentials"]]
    assert listed == [b64u(laptop.credential_id), b64u(phone.credential_id)]
    # and while the removal (approved by the laptop) is signed but not landed, the passkey cannot be deleted
    with transaction.atomic():
        removal = passkey_removal_submit(user=user, authenticator_id=phone_id, credential=laptop.get(
            body["public_key"]), nonce=body["nonce"], expires_at=body["expires_at"])
        in_flight = _delete(alice, phone_id)
        assert (in_flight.status_code, in_flight.json()["errors"][0]["code"]) == (409, "passkey_owns_wallet")
        page = alice.get(f"/api/v1/wallet/passkey-removals/{removal.id}").json()
        assert (page["status"], page["error_message"]) == ("signed", "")
    # when it lands (the outbox sends it after commit)
    assert _landed(removal.id) == "confirmed"
    status = alice.get(f"/api/v1/wallet/passkey-removals/{removal.id}").json()
    assert (status["status"], status["signature"]) == ("confirmed", removal.signature)
    # then on-chain the phone's key is no longer an authority, the laptop still owns the wallet, the nonce moved
    after = wallet_config_read(client=client, wallet=user.wallet)
    assert after.authority(compressed(phone)) is None
    assert after.authority(compressed(laptop)).permissions == OWNER
    assert (after.nonce, after.joint_threshold) == (before.nonce + 1, before.joint_threshold)
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
    # and a payment approved by the phone's passkey (whoever has the phone) is refused by the program
    fee_payer = relayer.fee_payer_pubkey()
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    forged = Payment(id=uuid.uuid4(), wallet=user.wallet, recipient_address=bob.address, token=tokens["SOL"],
                     amount=SOL // 10, network_fee=0, creates_recipient_token_account=False)
    action = payment_execute_instruction(payment=forged, fee_payer=fee_payer)
    expires_at = int(timezone.now().timestamp()) + 120
    signed = phone.get({"challenge": b64u(approval_challenge(
        wallet_program_id(), Pubkey.from_string(user.wallet.config_address), after.nonce, expires_at, action))})
    assertion = PasskeyAssertion(public_key=compressed(phone), authenticator_data=unb64u(
        signed["response"]["authenticatorData"]), client_data_json=unb64u(signed["response"]["clientDataJSON"]),
        signature=unb64u(signed["response"]["signature"]))
    message = compile_message(instructions=approve_with_passkeys(action, [assertion], expires_at=expires_at),
                              fee_payer=fee_payer, blockhash=client.latest_blockhash().blockhash)
    tx = assemble(message=message, signatures={
        fee_payer: relayer.relayer_cosign(user=user, message=message, reference=forged.id).signature})
    with pytest.raises(PreflightFailure) as refused:
        client.send_raw_transaction(bytes(tx))
    assert refused.value.err["InstructionError"][1] == {"Custom": ProgramErrorCode.UNKNOWN_AUTHORITY}
    # and Numpay no longer takes the phone's approval of a payment either (only the laptop is offered), nothing
    # approved
    SpendingPolicy.objects.create(name="Passkey above 0.1 SOL", scope="default", token=tokens["SOL"],
                                  passkey_above=SOL // 10)
    payment_id = awaiting(alice, bob, "0.2", symbol="SOL")
    payment_options = options_for(alice, payment_id).json()
    assert [entry["id"] for entry in payment_options["public_key"]["allowCredentials"]] == [
        b64u(laptop.credential_id)]
    by_phone = approve(alice, payment_id, phone.get(payment_options["public_key"]))
    assert (by_phone.status_code, by_phone.json()["code"]) == (400, "passkey_unknown")
    assert Payment.objects.get(pk=payment_id).status == "awaiting_approval"
    assert PaymentApproval.objects.filter(payment_id=payment_id, used_at__isnull=False).count() == 0
    # and the phone's passkey can now be deleted from her account (the one path: user_passkeys_remove)
    deleted = _delete(alice, phone_id)
    assert deleted.status_code == 200, deleted.content
    assert not Authenticator.objects.filter(pk=phone_id).exists()
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
    # and the laptop's passkey, now the only owner, cannot be removed from the wallet nor deleted
    only = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/removal-options", {})
    assert (only.status_code, only.json()["code"]) == (409, "passkey_only_wallet_owner")
    assert "guardians" in only.json()["detail"]
    assert _delete(alice, laptop_id).status_code == 409


def test_refused_removals_change_nothing_on_chain_or_in_the_db(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet owned by the laptop's and the phone's passkeys, and Bob with a passkey of his own
    alice, user, laptop, phone, laptop_id, phone_id = _two_owners()
    bob = ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    bobs = register(bob, "Bob's")
    client = get_chain_client()
    before = _snapshot(user)
    nonce = before[0]
    body = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/removal-options", {}).json()
    # when Bob's passkey approves the removal of Alice's phone
    by_bob = _remove(alice, phone_id, bobs, body)
    # then it is refused: not one of her owner passkeys
    assert (by_bob.status_code, by_bob.json()["code"]) == (400, "passkey_unknown")
    # when the laptop approves an old challenge (made at an earlier nonce, before the phone was an owner)
    expires_at = int(timezone.now().timestamp()) + 60
    stale = laptop.get({"challenge": b64u(approval_challenge(
        wallet_program_id(), Pubkey.from_string(user.wallet.config_address), nonce - 1, expires_at,
        removal_action(wallet=user.wallet, public_key=compressed(phone))))})
    outdated = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/removal", {
        "credential": stale, "nonce": nonce - 1, "expires_at": expires_at})
    # then it is refused as outdated
    assert (outdated.status_code, outdated.json()["code"]) == (409, "approval_outdated")
    # when the laptop's assertion is over another challenge than the one named (nonce and expiry of the options,
    # signature over something else)
    other = laptop.get({"challenge": b64u(b"\x01" * 32)})
    forged = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/removal", {
        "credential": other, "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert (forged.status_code, forged.json()["code"]) == (400, "passkey_assertion_invalid")
    # when a passkey that is not an owner is to be removed from the wallet (a third one, registered only)
    register(alice, "Tablet")
    tablet_id = Authenticator.objects.get(user=user, data__name="Tablet").pk
    not_owner = alice.post(f"/api/v1/wallet/passkeys/{tablet_id}/removal-options", {})
    assert (not_owner.status_code, not_owner.json()["code"]) == (409, "passkey_not_wallet_owner")
    # then nothing changed on-chain or in the DB (the tablet aside, registered meanwhile)
    assert _snapshot(user)[:4] == before[:4]

    # when the phone's passkey approves its own removal (allowed: someone retiring a device they still hold)
    removal = _remove(alice, phone_id, phone, body)
    assert removal.status_code == 202, removal.content
    # and the same assertion is sent again while it is on its way, then after it landed
    replay_early = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/removal", {
        "credential": phone.get(body["public_key"]), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert (replay_early.status_code, replay_early.json()["code"]) == (409, "wallet_change_pending")
    assert _landed(removal.json()["id"]) == "confirmed"
    after = _snapshot(user)
    replay = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/removal", {
        "credential": phone.get(body["public_key"]), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    # then the replays are refused, and nothing changed since the one removal landed
    assert (replay.status_code, replay.json()["code"]) == (409, "passkey_not_wallet_owner")
    assert _snapshot(user) == after
    assert WalletProtection.objects.filter(kind="remove_passkey").count() == 1
    # (and Bob cannot read her removal's status)
    unknown = bob.get(f"/api/v1/wallet/passkey-removals/{removal.json()['id']}")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "passkey_removal_not_found")
    # and the program itself refuses the landed approval sent again in a new transaction (the nonce moved)
    stored = WalletProtection.objects.get(pk=removal.json()["id"])
    fee_payer = relayer.fee_payer_pubkey()
    message = compile_message(instructions=removal_instructions(stored), fee_payer=fee_payer,
                              blockhash=client.latest_blockhash().blockhash)
    tx = assemble(message=message, signatures={
        fee_payer: relayer.relayer_cosign(user=user, message=message, reference=uuid.uuid4()).signature})
    with pytest.raises(PreflightFailure) as refused:
        client.send_raw_transaction(bytes(tx))
    assert refused.value.err["InstructionError"][1]["Custom"] in (ProgramErrorCode.CHALLENGE_MISMATCH,
                                                                  ProgramErrorCode.UNKNOWN_AUTHORITY)
    assert _snapshot(user) == after
    # and the phone's passkey, taken off once, cannot be made an owner again
    again = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {})
    assert (again.status_code, again.json()["code"]) == (409, "passkey_removed_from_wallet")


def test_the_only_owner_passkey_is_never_taken_off(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet owned by one passkey
    alice = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com")
    user = User.objects.get(email=alice.email)
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(user.wallet) == PROTECTED, timeout=60)
    laptop_id = Authenticator.objects.get(user=user, data__name="Laptop").pk
    before = _snapshot(user)
    # when she asks to remove it from the wallet
    options = alice.post(f"/api/v1/wallet/passkeys/{laptop_id}/removal-options", {})
    # then it is refused with a code and a sentence pointing to recovery
    assert (options.status_code, options.json()["code"]) == (409, "passkey_only_wallet_owner")
    assert options.json()["detail"].endswith("If you lost the device, recover your wallet through your guardians.")
    # and a removal approved by it over the program's challenge (built by a client itself) is refused too
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    expires_at = int(timezone.now().timestamp()) + 60
    credential = laptop.get({"challenge": b64u(approval_challenge(
        wallet_program_id(), Pubkey.from_string(user.wallet.config_address), config.nonce, expires_at,
        removal_action(wallet=user.wallet, public_key=compressed(laptop))))})
    with pytest.raises(ApplicationError) as refused:
        passkey_removal_submit(user=user, authenticator_id=laptop_id, credential=credential, nonce=config.nonce,
                               expires_at=expires_at)
    assert refused.value.code == "passkey_only_wallet_owner"
    # and nothing changed
    assert _snapshot(user) == before


@postgresql_only
def test_two_removals_at_once_each_approved_by_the_other_passkey_land_at_most_once(celery_worker, tokens) -> None:  # noqa: ANN001
    # given a wallet owned by the laptop's and the phone's passkeys, and both removals approved at the same nonce:
    # the laptop's removal approved by the phone, the phone's removal approved by the laptop
    alice, user, laptop, phone, laptop_id, phone_id = _two_owners()
    remove_laptop = passkey_removal_options(user=user, authenticator_id=laptop_id)
    remove_phone = passkey_removal_options(user=user, authenticator_id=phone_id)
    by_phone = phone.get(remove_laptop.public_key)
    by_laptop = laptop.get(remove_phone.public_key)
    outcome: dict[str, Any] = {}

    def remove_the_laptop() -> None:
        try:
            passkey_removal_submit(user=user, authenticator_id=laptop_id, credential=by_phone,
                                   nonce=remove_laptop.nonce, expires_at=remove_laptop.expires_at)
            outcome["laptop"] = "submitted"
        except ApplicationError as error:
            outcome["laptop"] = error.code
        finally:
            connection.close()

    # when the laptop's removal reaches the wallet's lock while the phone's removal holds it
    thread = threading.Thread(target=remove_the_laptop)
    with transaction.atomic():
        wallet_qs_select_for_update().get(user=user)
        thread.start()
        assert wait_for_lock_waiters(1, give_up_when=lambda: not thread.is_alive())
        removal = passkey_removal_submit(user=user, authenticator_id=phone_id, credential=by_laptop,
                                         nonce=remove_phone.nonce, expires_at=remove_phone.expires_at)
    thread.join()
    # then the second, decided after the first committed, is refused; one removal was signed
    assert outcome == {"laptop": "wallet_change_pending"}
    assert list(WalletProtection.objects.filter(kind="remove_passkey").values_list("id", flat=True)) == [removal.id]
    assert _landed(removal.id) == "confirmed"
    # and the wallet keeps an owner: the laptop's passkey, on-chain and in the DB
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    assert [entry.key for entry in config.authorities if entry.permissions & PERMISSION_MANAGE] == [
        compressed(laptop)]
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
    # and once it landed, the laptop's removal (over the old nonce) is refused: it is the only owner left
    with pytest.raises(ApplicationError) as refused:
        passkey_removal_submit(user=user, authenticator_id=laptop_id, credential=by_phone,
                               nonce=remove_laptop.nonce, expires_at=remove_laptop.expires_at)
    assert refused.value.code == "passkey_only_wallet_owner"


def test_a_removal_whose_send_was_lost_lands_once(celery_worker, tokens, monkeypatch) -> None:  # noqa: ANN001
    # given two owner passkeys, and every "send after commit" message lost (a broker restarted without its queue)
    alice, user, laptop, phone, laptop_id, phone_id = _two_owners()
    nonce = wallet_config_read(client=get_chain_client(), wallet=user.wallet).nonce
    lost: list[Any] = []
    monkeypatch.setattr(outbox, "enqueue_send", lambda kind, owner_id: lost.append(owner_id))
    # when the laptop approves taking the phone's passkey off the wallet
    removal = _remove(alice, phone_id, laptop)
    assert removal.status_code == 202, removal.content
    # then the signed transaction was stored before any send, and the outbox's poller (restarted by its beat sweep)
    # sends it: it lands, once (one landed attempt; the nonce moved by exactly one)
    assert lost == [uuid.UUID(removal.json()["id"])]
    assert _landed(removal.json()["id"]) == "confirmed"
    statuses = list(WalletProtection.objects.get(pk=removal.json()["id"]).attempts.order_by("number")
                    .values_list("status", flat=True))
    assert statuses[-1] == "landed"
    assert set(statuses[:-1]) <= {"expired"}
    config = wallet_config_read(client=get_chain_client(), wallet=user.wallet)
    assert (config.nonce, config.authority(compressed(phone))) == (nonce + 1, None)
    assert onchain_passkey_ids(user.wallet) == {laptop_id}
