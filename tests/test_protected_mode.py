"""Protected mode on the real localnet with the real wallet program (issue 9 item 4, DESIGN.md "Modes"): registering
a passkey makes it the wallet's on-chain owner and caps the custody key at the policy's "no passkey needed" limit;
above it a payment lands only with the passkey's approval, verified on-chain through the secp256r1 precompile, and
a custody-signed transaction (a compromised server) is refused by the program."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.utils import timezone
from solders.pubkey import Pubkey

from accounts.models import User
from numpay.core.solana import PreflightFailure, get_chain_client
from numpay.core.transactions import assemble, compile_message
from payments.models import Payment, PaymentApproval, SpendingPolicy, WalletProtection
from payments.protection import CUSTODIAL, PROTECTED, wallet_mode
from payments.transactions import payment_execute_instruction
from relayer import services as relayer
from wallets.program import (
    SECP256R1_PROGRAM_ID,
    PasskeyAssertion,
    ProgramErrorCode,
    approval_challenge,
    approve_with_passkeys,
)
from wallets.program.instructions import (
    KIND_SECP256R1,
    PERMISSION_MANAGE,
    PERMISSION_RECOVERY_CANCEL,
    PERMISSION_SPEND,
)
from wallets.services import wallet_sign
from wallets.smart import wallet_config_read, wallet_program_id

from .helpers import wait_until
from .payments_support import ApiUser, sol_balance, token_balance, transaction_json, wait_terminal
from .test_payment_approvals import APP, PASSWORD, approve, awaiting, options_for
from .webauthn_support import SoftAuthenticator, b64u, unb64u

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]
USDC = 1_000_000
SOL = 1_000_000_000


class BrowserAuthenticator(SoftAuthenticator):
    """The software authenticator with clientDataJSON serialized as browsers do (no spaces: WebAuthn's
    ``CollectedClientData`` serialization), which the program checks by exact prefix."""

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()


def register(user: ApiUser, name: str) -> BrowserAuthenticator:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(email=user.email).update(verified=True)
    assert user.post(f"{APP}/auth/reauthenticate", {"password": PASSWORD}).status_code == 200
    options = user.get(f"{APP}/account/authenticators/webauthn?passwordless").json()["data"]["creation_options"]
    soft = BrowserAuthenticator(counter=1)
    response = user.post(f"{APP}/account/authenticators/webauthn",
                         {"name": name, "credential": soft.create(options["publicKey"])})
    assert response.status_code == 200, response.content
    return soft


def approve_all(soft: SoftAuthenticator, options: dict[str, Any]) -> list[dict[str, Any]]:
    """``soft``'s assertion over each of the options' ``approvals``, in order ("Approve 1 of N", ...)."""
    return [soft.get(entry) for entry in options["approvals"]]


def compressed(soft: SoftAuthenticator) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return soft.key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def program_ids(tx: dict[str, Any]) -> list[str]:
    message = tx["transaction"]["message"]
    keys = [key["pubkey"] if isinstance(key, dict) else key for key in message["accountKeys"]]
    return [instruction["programId"] if "programId" in instruction else keys[instruction["programIdIndex"]]
            for instruction in message["instructions"]]


def test_a_passkey_protects_the_wallet_and_the_chain_checks_the_approval(celery_worker, tokens) -> None:  # noqa: ANN001
    # given "passkey above 10 USDC" and a user with 100 USDC in a custodial smart wallet
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], passkey_above=10 * USDC,
                                  daily_cap=500 * USDC)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "100")
    wallet = User.objects.get(email=alice.email).wallet
    assert wallet_mode(wallet) == CUSTODIAL
    # when she registers a passkey
    laptop = register(alice, "Laptop")
    # then one custody-signed transaction makes it the wallet's owner on-chain, and the custody key a capped spender
    assert wait_until(lambda: WalletProtection.objects.filter(wallet=wallet).exclude(status__in=("signed",
                      "submitted")).exists(), timeout=60)
    protection = WalletProtection.objects.get(wallet=wallet)
    assert (protection.status, protection.error_message) == ("confirmed", "")
    assert wallet_mode(wallet) == PROTECTED
    client = get_chain_client()
    config = wallet_config_read(client=client, wallet=wallet)
    custody = Pubkey.from_string(wallet.signing_address)
    usdc_mint = Pubkey.from_string(tokens["USDC"].mint)
    owner = config.authority(compressed(laptop))
    assert (owner.kind, owner.permissions) == (KIND_SECP256R1, PERMISSION_SPEND | PERMISSION_MANAGE)
    # no more manage; it may still end a pending recovery Numpay stopped (block, never perform one)
    assert config.authority(custody).permissions == PERMISSION_SPEND | PERMISSION_RECOVERY_CANCEL
    limit = config.limit(custody, usdc_mint)
    assert (limit.per_transaction_cap, limit.period_cap) == (10 * USDC, 500 * USDC)
    assert config.limit(compressed(laptop), usdc_mint).per_transaction_cap == 2**64 - 1
    assert config.rp_id_hash == hashlib.sha256(b"localhost").digest()
    assert config.nonce == 0

    # when she pays 5 (below the cap: the custody key signs, no prompt)
    small = alice.pay(bob.email, "USDC", "5").json()
    assert small["status"] == "approved"
    assert wait_terminal([small["id"]]) == {small["id"]: "confirmed"}

    # when a compromised server signs 20 USDC with the custody key alone
    fee_payer = relayer.fee_payer_pubkey()
    forged = Payment(id=uuid.uuid4(), wallet=wallet, recipient_address=bob.address, token=tokens["USDC"],
                     amount=20 * USDC, network_fee=0, creates_recipient_token_account=False)
    message = compile_message(instructions=[payment_execute_instruction(payment=forged, fee_payer=fee_payer)],
                              fee_payer=fee_payer, blockhash=client.latest_blockhash().blockhash)
    cosigned = relayer.relayer_cosign(user=wallet.user, message=message, reference=forged.id)
    tx = assemble(message=message, signatures={fee_payer: cosigned.signature,
                                               custody: wallet_sign(wallet=wallet, message=bytes(message))})
    # then the program refuses it: above the custody key's on-chain cap
    with pytest.raises(PreflightFailure) as refused:
        client.send_raw_transaction(bytes(tx))
    assert refused.value.err["InstructionError"][1] == {"Custom": ProgramErrorCode.PER_TRANSACTION_LIMIT_EXCEEDED}
    assert token_balance(bob.address, tokens["USDC"].mint) == 5 * USDC

    # when she pays 20 and approves with her passkey
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    approval = PaymentApproval.objects.get(pk=options["approval_id"])
    assert approval.onchain_nonce == 0  # the program's challenge, over the exact execute and the config's nonce
    response = approve(alice, payment_id, laptop.get(options["public_key"]))
    assert response.status_code == 200, response.content
    # then it lands, carrying the secp256r1 precompile instruction, and the config's nonce moved
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    landed = transaction_json(Payment.objects.get(pk=payment_id).signature)
    assert program_ids(landed) == [str(SECP256R1_PROGRAM_ID), str(wallet_program_id())]
    assert wallet_config_read(client=client, wallet=wallet).nonce == 1
    assert token_balance(bob.address, tokens["USDC"].mint) == 25 * USDC
    # and the same approval cannot move anything again (the nonce moved; the challenge is used)
    second = approve(alice, payment_id, laptop.get(options["public_key"]))
    assert (second.status_code, second.json()["code"]) == (409, "approval_challenge_used")


def test_two_owner_passkeys_approve_together_above_the_second_threshold_and_one_alone_cannot(
        celery_worker, tokens) -> None:  # noqa: ANN001
    # given "passkey above 1 SOL, two passkeys above 2 SOL" (and 10 / 50 USDC), a wallet protected by the laptop
    SpendingPolicy.objects.create(name="Standard SOL", scope="default", token=tokens["SOL"], passkey_above=SOL,
                                  two_passkeys_above=2 * SOL)
    SpendingPolicy.objects.create(name="Standard USDC", scope="default", token=tokens["USDC"], passkey_above=10 * USDC,
                                  two_passkeys_above=50 * USDC)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("SOL", "5")
    alice.faucet("USDC", "100")
    user = User.objects.get(email=alice.email)
    wallet = user.wallet
    laptop = register(alice, "Laptop")
    assert wait_until(lambda: wallet_mode(wallet) == PROTECTED, timeout=60)
    # (a payment whose approval starts now, at the config's nonce 0)
    early_id = awaiting(alice, bob, "1.5", symbol="SOL")
    early = options_for(alice, early_id).json()
    # when she registers her phone's passkey: the custody key cannot add it; the laptop's passkey approves it
    phone = register(alice, "Phone")
    phone_id = Authenticator.objects.get(user=user, type="webauthn", data__name="Phone").pk
    options = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner-options", {})
    assert options.status_code == 201, options.content
    body = options.json()
    assert len(body["public_key"]["allowCredentials"]) == 1  # the laptop, the owner
    assert len(body["approvals"]) == 3  # the add_authority, then the phone's SOL and USDC limits
    refused_by_phone = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner", {
        "credentials": approve_all(phone, body), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert (refused_by_phone.status_code, refused_by_phone.json()["code"]) == (400, "passkey_unknown")
    added = alice.post(f"/api/v1/wallet/passkeys/{phone_id}/owner", {
        "credentials": approve_all(laptop, body), "nonce": body["nonce"], "expires_at": body["expires_at"]})
    assert added.status_code == 202, added.content
    assert wait_until(lambda: alice.get(added.json()["status_url"]).json()["status"] not in ("signed", "submitted"),
                      timeout=60)
    assert alice.get(added.json()["status_url"]).json()["status"] == "confirmed"
    client = get_chain_client()
    config = wallet_config_read(client=client, wallet=wallet)
    assert config.authority(compressed(phone)).permissions == PERMISSION_SPEND | PERMISSION_MANAGE
    assert (config.joint_threshold, config.nonce) == (2, 3)  # three approved actions
    # and the approval started before the nonce moved is refused, nothing recorded (the program would refuse it)
    outdated = approve(alice, early_id, laptop.get(early["public_key"]))
    assert (outdated.status_code, outdated.json()["code"]) == (409, "approval_outdated")
    assert PaymentApproval.objects.filter(payment_id=early_id, used_at__isnull=False).count() == 0
    assert alice.post(f"/api/v1/payments/{early_id}/cancel", {}).json()["status"] == "rejected"

    # when one owner passkey alone approves 3 SOL on-chain (a server that skipped the second approval)
    fee_payer = relayer.fee_payer_pubkey()
    forged = Payment(id=uuid.uuid4(), wallet=wallet, recipient_address=bob.address, token=tokens["SOL"],
                     amount=3 * SOL, network_fee=0, creates_recipient_token_account=False)
    action = payment_execute_instruction(payment=forged, fee_payer=fee_payer)
    expires_at = int(timezone.now().timestamp()) + 120
    challenge = approval_challenge(wallet_program_id(), Pubkey.from_string(wallet.config_address), config.nonce,
                                   expires_at, action)
    alone = laptop.get({"challenge": b64u(challenge)})
    assertion = PasskeyAssertion(public_key=compressed(laptop), authenticator_data=unb64u(
        alone["response"]["authenticatorData"]), client_data_json=unb64u(alone["response"]["clientDataJSON"]),
        signature=unb64u(alone["response"]["signature"]))
    message = compile_message(instructions=approve_with_passkeys(action, [assertion], expires_at=expires_at),
                              fee_payer=fee_payer, blockhash=client.latest_blockhash().blockhash)
    cosigned = relayer.relayer_cosign(user=user, message=message, reference=forged.id)
    tx = assemble(message=message, signatures={fee_payer: cosigned.signature})
    # then the program refuses it: above that passkey's own per-payment limit (2 SOL)
    with pytest.raises(PreflightFailure) as refused:
        client.send_raw_transaction(bytes(tx))
    assert refused.value.err["InstructionError"][1] == {"Custom": ProgramErrorCode.PER_TRANSACTION_LIMIT_EXCEEDED}

    # when she pays 3 SOL through Numpay: the laptop approves (1 of 2), then the phone (2 of 2)
    bob_before = sol_balance(bob.address)
    payment_id = awaiting(alice, bob, "3", symbol="SOL")
    first = options_for(alice, payment_id).json()
    assert approve(alice, payment_id, laptop.get(first["public_key"])).json()["approvals"] == {"received": 1,
                                                                                             "required": 2}
    second = options_for(alice, payment_id).json()
    assert second["public_key"]["challenge"] == first["public_key"]["challenge"]  # one challenge, signed by both
    response = approve(alice, payment_id, phone.get(second["public_key"]))
    assert response.json()["approvals"] == {"received": 2, "required": 2}, response.content
    # then it lands with both signatures checked by the precompile, above each passkey's own limit
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    landed = transaction_json(Payment.objects.get(pk=payment_id).signature)
    assert program_ids(landed) == [str(SECP256R1_PROGRAM_ID), str(wallet_program_id())]
    assert sol_balance(bob.address) == bob_before + 3 * SOL
    assert wallet_config_read(client=client, wallet=wallet).nonce == 4

    # a 2-of-2 USDC payment that also opens Bob's token account does not fit one transaction with two
    # approvals: refused when the second passkey approves, nothing recorded or signed
    usdc_id = awaiting(alice, bob, "60")
    first = options_for(alice, usdc_id).json()
    assert approve(alice, usdc_id, laptop.get(first["public_key"])).status_code == 200
    too_large = approve(alice, usdc_id, phone.get(options_for(alice, usdc_id).json()["public_key"]))
    assert (too_large.status_code, too_large.json()["code"]) == (400, "transaction_too_large")
    assert Payment.objects.get(pk=usdc_id).status == "awaiting_approval"
    assert PaymentApproval.objects.filter(payment_id=usdc_id, used_at__isnull=False).count() == 1
