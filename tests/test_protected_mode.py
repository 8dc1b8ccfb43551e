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
from solders.pubkey import Pubkey

from accounts.models import User
from numpay.core.solana import PreflightFailure, get_chain_client
from numpay.core.transactions import assemble, compile_message
from payments.models import Payment, PaymentApproval, SpendingPolicy, WalletProtection
from payments.protection import CUSTODIAL, PROTECTED, wallet_mode
from payments.transactions import payment_execute_instruction
from relayer import services as relayer
from wallets.program import SECP256R1_PROGRAM_ID, ProgramErrorCode
from wallets.program.instructions import KIND_SECP256R1, PERMISSION_MANAGE, PERMISSION_SPEND
from wallets.services import wallet_sign
from wallets.smart import wallet_config_read, wallet_program_id

from .helpers import wait_until
from .payments_support import ApiUser, token_balance, transaction_json, wait_terminal
from .test_payment_approvals import APP, PASSWORD, approve, awaiting, options_for
from .webauthn_support import SoftAuthenticator

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]
USDC = 1_000_000


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
    assert config.authority(custody).permissions == PERMISSION_SPEND  # no more manage
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
