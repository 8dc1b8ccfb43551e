"""The passkey step-up of a payment (issue 9 items 3, 5, 6) through the REST API on a real localnet, with a
software authenticator making real WebAuthn assertions: the challenge bound to the payment, one and two distinct
passkeys, and every refusal (wrong origin, wrong RP ID, replayed assertion, reused or expired challenge, UV
missing, sign-count regression, an assertion for another payment, another user's passkey, the same passkey twice
toward "2 of 2", a payment no longer waiting), each with its registered code and nothing changed afterwards."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import cache
from django.db import connection, transaction

from accounts.models import PasskeyState, User
from numpay.core.solana import get_chain_client
from payments import approvals
from payments.authorization import available_balance
from payments.models import Payment, PaymentApproval, PaymentAttempt, SpendingPolicy
from payments.policy_services import wallet_usage
from payments.services import payments_expire_due

from .payments_support import ApiUser, token_balance, wait_terminal
from .races import postgresql_only, wait_for_lock_waiters
from .webauthn_support import UP, UV, SoftAuthenticator, b64u, unb64u

pytestmark = [pytest.mark.django_db]
USDC = 1_000_000
APP = "/_allauth/app/v1"
PASSWORD = "correct-Horse-9"  # noqa: S105 - ApiUser's password


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


def register_passkey(user: ApiUser, name: str, counter: int = 5) -> SoftAuthenticator:
    """Register a passkey for ``user`` through allauth's headless app API (the real ceremony)."""
    EmailAddress.objects.filter(email=user.email).update(verified=True)
    assert user.post(f"{APP}/auth/reauthenticate", {"password": PASSWORD}).status_code == 200
    options = user.get(f"{APP}/account/authenticators/webauthn?passwordless").json()["data"]["creation_options"]
    soft = SoftAuthenticator(counter=counter)
    response = user.post(f"{APP}/account/authenticators/webauthn",
                         {"name": name, "credential": soft.create(options["publicKey"])})
    assert response.status_code == 200, response.content
    return soft


def options_for(user: ApiUser, payment_id: str) -> Any:
    return user.post(f"/api/v1/payments/{payment_id}/approval-options", {})


def approve(user: ApiUser, payment_id: str, credential: dict[str, Any]) -> Any:
    return user.post(f"/api/v1/payments/{payment_id}/approve", {"credential": credential})


def state(payment_id: str) -> tuple[Any, ...]:
    """Everything an approval may change: the payment, its attempts, its used approvals, the counters."""
    payment = Payment.objects.get(pk=payment_id)
    return (payment.status, payment.signature, payment.approved_at, payment.events.count(),
            PaymentAttempt.objects.filter(payment=payment).count(),
            sorted(PaymentApproval.objects.filter(payment=payment, used_at__isnull=False)
                   .values_list("authenticator_id", flat=True)),
            sorted(PasskeyState.objects.values_list("authenticator_id", "sign_count")),
            sorted((a.pk, a.last_used_at) for a in Authenticator.objects.all()))


def refused(response: Any, status: int, code: str) -> None:
    assert (response.status_code, response.json().get("code")) == (status, code), response.content


@pytest.fixture
def people(tokens) -> tuple[ApiUser, ApiUser, SoftAuthenticator]:  # noqa: ANN001
    """Alice (100 USDC, one passkey "Laptop") and Bob; the default policy asks for a passkey above 10 USDC and
    two distinct passkeys above 50 USDC."""
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], passkey_above=10 * USDC,
                                  two_passkeys_above=50 * USDC)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "100")
    laptop = register_passkey(alice, "Laptop")
    return alice, bob, laptop


def awaiting(alice: ApiUser, bob: ApiUser, amount: str, symbol: str = "USDC") -> str:
    response = alice.pay(bob.email, symbol, amount)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "awaiting_approval"
    return response.json()["id"]


# --- the challenge (pure) ---


def test_the_challenge_is_a_digest_of_exactly_what_is_approved(tokens) -> None:  # noqa: ANN001
    from wallets.models import Wallet

    wallet = Wallet(address="9" * 44)
    payment = Payment(id=uuid.UUID(int=1), wallet=wallet, recipient_address="8" * 44, token=tokens["USDC"],
                      amount=20 * USDC, network_fee=0)
    nonce, expires_at = b"\1" * 32, datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    challenge = approvals.approval_challenge(payment=payment, nonce=nonce, expires_at=expires_at)
    assert len(challenge) == 32
    assert challenge == approvals.approval_challenge(payment=payment, nonce=nonce, expires_at=expires_at)
    # each approved term changes it
    variants = [
        approvals.approval_challenge(payment=payment, nonce=b"\2" * 32, expires_at=expires_at),
        approvals.approval_challenge(payment=payment, nonce=nonce, expires_at=expires_at.replace(minute=1)),
    ]
    for field, value in (("amount", 20 * USDC + 1), ("network_fee", 1), ("recipient_address", "7" * 44),
                         ("id", uuid.UUID(int=2)), ("token", tokens["SOL"])):
        changed = Payment(**{"id": payment.id, "wallet": wallet, "recipient_address": payment.recipient_address,
                             "token": payment.token, "amount": payment.amount, "network_fee": 0, field: value})
        variants.append(approvals.approval_challenge(payment=changed, nonce=nonce, expires_at=expires_at))
    other_wallet = Payment(id=payment.id, wallet=Wallet(address="6" * 44), recipient_address=payment.recipient_address,
                           token=payment.token, amount=payment.amount, network_fee=0)
    variants.append(approvals.approval_challenge(payment=other_wallet, nonce=nonce, expires_at=expires_at))
    assert len({challenge, *variants}) == len(variants) + 1


# --- approving ---


@pytest.mark.chain
def test_options_are_bound_to_the_payment_and_list_the_users_passkeys(people) -> None:
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    response = options_for(alice, payment_id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["approvals"] == {"received": 0, "required": 1}
    public_key = body["public_key"]
    assert (public_key["rpId"], public_key["userVerification"]) == ("localhost", "required")
    assert [c["id"] for c in public_key["allowCredentials"]] == [b64u(laptop.credential_id)]
    # the challenge is the digest of this payment's terms with the stored approval's nonce and expiry; only
    # its hash is stored
    approval = PaymentApproval.objects.get(pk=body["approval_id"])
    payment = Payment.objects.select_related("wallet", "token").get(pk=payment_id)
    expected = approvals.approval_challenge(payment=payment, nonce=bytes(approval.nonce),
                                            expires_at=approval.expires_at)
    assert unb64u(public_key["challenge"]) == expected
    assert approval.challenge_hash == hashlib.sha256(expected).hexdigest()
    assert approval.used_at is None
    assert approval.expires_at <= payment.expires_at


@pytest.mark.django_db(transaction=True)
@pytest.mark.chain
def test_one_passkey_approves_and_the_payment_is_signed_with_a_fresh_blockhash_and_lands(
        celery_worker, tokens, settings) -> None:  # noqa: ANN001
    # given alice's 20 USDC payment waiting for her passkey (passkey above 10 USDC), in a custodial wallet (protected
    # mode, where the chain checks the approval too, is tests/test_protected_mode.py)
    settings.PAYMENTS_PROTECT_ON_PASSKEY = False
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], passkey_above=10 * USDC)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "100")
    laptop = register_passkey(alice, "Laptop")
    small = alice.pay(bob.email, "USDC", "5")
    assert small.json()["status"] == "approved"  # under the threshold: no prompt
    payment_id = awaiting(alice, bob, "20")
    assert PaymentAttempt.objects.filter(payment_id=payment_id).count() == 0  # nothing signed while waiting
    # when her passkey signs the options' challenge
    options = options_for(alice, payment_id).json()
    laptop_assertions = [laptop.get(options["public_key"])]
    response = approve(alice, payment_id, laptop_assertions[0])
    # then the payment is approved, signed once, and lands
    assert response.status_code == 200, response.content
    assert response.json()["approvals"] == {"received": 1, "required": 1}
    assert response.json()["payment"]["status"] in ("approved", "submitted", "confirmed")
    assert wait_terminal([payment_id, small.json()["id"]]) == {payment_id: "confirmed", small.json()["id"]: "confirmed"}
    assert token_balance(bob.address, tokens["USDC"].mint) == 25 * USDC
    payment = Payment.objects.get(pk=payment_id)
    assert payment.events.filter(note="passkey step-up: 1 of 1 approvals").count() == 1
    approval = PaymentApproval.objects.get(pk=options["approval_id"])
    assert approval.used_at is not None
    assert approval.authenticator.user.email == alice.email
    assert approval.sign_count == 6
    assertion = laptop_assertions[0]
    assert (bytes(approval.client_data_json), bytes(approval.authenticator_data), bytes(approval.signature)) == (
        unb64u(assertion["response"]["clientDataJSON"]), unb64u(assertion["response"]["authenticatorData"]),
        unb64u(assertion["response"]["signature"]))
    assert PasskeyState.objects.get(authenticator=approval.authenticator).sign_count == 6


@pytest.mark.chain
def test_two_distinct_passkeys_are_needed_above_the_second_threshold(people) -> None:
    alice, bob, laptop = people
    phone = register_passkey(alice, "Phone", counter=0)
    payment_id = awaiting(alice, bob, "60")
    # the first passkey approves: 1 of 2, still waiting, nothing signed
    first = options_for(alice, payment_id).json()
    assert first["approvals"] == {"received": 0, "required": 2}
    response = approve(alice, payment_id, laptop.get(first["public_key"]))
    assert response.status_code == 200, response.content
    assert response.json()["approvals"] == {"received": 1, "required": 2}
    assert response.json()["payment"]["status"] == "awaiting_approval"
    assert response.json()["payment"]["signature"] == ""
    # the second device's options offer only the passkey that has not approved
    second = options_for(alice, payment_id).json()
    assert second["approvals"] == {"received": 1, "required": 2}
    assert [c["id"] for c in second["public_key"]["allowCredentials"]] == [b64u(phone.credential_id)]
    # the same passkey again (toward 2 of 2) is refused, and changes nothing
    before = state(payment_id)
    refused(approve(alice, payment_id, laptop.get(second["public_key"])), 409, "passkey_already_approved")
    assert state(payment_id) == before
    # the second, distinct passkey approves: signed
    response = approve(alice, payment_id, phone.get(second["public_key"]))
    assert response.status_code == 200, response.content
    assert response.json()["approvals"] == {"received": 2, "required": 2}
    assert response.json()["payment"]["status"] == "approved"
    assert PaymentAttempt.objects.filter(payment_id=payment_id).count() == 1
    assert Payment.objects.get(pk=payment_id).events.filter(note="passkey step-up: 2 of 2 approvals").exists()


@pytest.mark.chain
def test_two_of_two_with_a_single_registered_passkey_is_refused_at_the_options(people) -> None:
    alice, bob, _laptop = people
    payment_id = awaiting(alice, bob, "60")
    response = options_for(alice, payment_id)
    refused(response, 409, "passkeys_insufficient")
    assert response.json()["detail"] == ("This payment needs 2 different passkeys; you have 1. Add a passkey on your "
                                         "account page, or cancel the payment.")
    assert PaymentApproval.objects.count() == 0


# --- attacks on the assertion: each refused with its code, nothing changed ---


@pytest.mark.chain
@pytest.mark.parametrize(("tamper", "code"), [
    ({"origin": "https://evil.example"}, "passkey_assertion_invalid"),
    ({"rp_id": "evil.example"}, "passkey_assertion_invalid"),
    ({"flags": UP}, "passkey_assertion_invalid"),  # user verification missing
])
def test_assertion_attacks_are_refused_and_change_nothing(people, tamper, code) -> None:  # noqa: ANN001
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    before = state(payment_id)
    refused(approve(alice, payment_id, laptop.get(options["public_key"], **tamper)), 400, code)
    assert state(payment_id) == before
    # and the genuine assertion still works afterwards (the challenge was not burnt by the refusal)
    assert approve(alice, payment_id, laptop.get(options["public_key"])).status_code == 200


@pytest.mark.chain
def test_a_bad_signature_and_a_malformed_body_are_refused(people) -> None:
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    before = state(payment_id)
    credential = laptop.get(options["public_key"])
    signature = bytearray(unb64u(credential["response"]["signature"]))
    signature[-1] ^= 1
    forged = {**credential, "response": {**credential["response"], "signature": b64u(bytes(signature))}}
    refused(approve(alice, payment_id, forged), 400, "passkey_assertion_invalid")
    refused(approve(alice, payment_id, {"response": {}}), 400, "passkey_assertion_invalid")
    refused(alice.post(f"/api/v1/payments/{payment_id}/approve", {}), 400, "invalid_request")
    assert state(payment_id) == before


@pytest.mark.chain
def test_replayed_assertion_and_reused_challenge_are_refused(people) -> None:
    alice, bob, laptop = people
    phone = register_passkey(alice, "Phone")
    payment_id = awaiting(alice, bob, "60")
    options = options_for(alice, payment_id).json()
    assertion = laptop.get(options["public_key"])
    assert approve(alice, payment_id, assertion).status_code == 200
    before = state(payment_id)
    # the same assertion again
    refused(approve(alice, payment_id, assertion), 409, "approval_challenge_used")
    # a new assertion (the other passkey) over the used challenge
    refused(approve(alice, payment_id, phone.get(options["public_key"])), 409, "approval_challenge_used")
    assert state(payment_id) == before


@pytest.mark.chain
def test_an_expired_challenge_is_refused(people, settings) -> None:  # noqa: ANN001
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    settings.PAYMENTS_STEP_UP_TTL_SECONDS = 0
    options = options_for(alice, payment_id).json()
    before = state(payment_id)
    refused(approve(alice, payment_id, laptop.get(options["public_key"])), 409, "approval_challenge_expired")
    assert state(payment_id) == before


@pytest.mark.chain
def test_a_sign_count_regression_is_refused(people) -> None:
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    before = state(payment_id)
    laptop.counter = 5  # the count it registered with: not greater (a cloned authenticator)
    refused(approve(alice, payment_id, laptop.get(options["public_key"], advance=False)), 400,
            "passkey_sign_count_regressed")
    assert state(payment_id) == before


@pytest.mark.chain
def test_an_assertion_made_for_another_payment_is_refused(people) -> None:
    alice, bob, laptop = people
    first, second = awaiting(alice, bob, "20"), awaiting(alice, bob, "30")
    options = options_for(alice, second).json()
    assertion = laptop.get(options["public_key"])
    before = (state(first), state(second))
    refused(approve(alice, first, assertion), 400, "approval_wrong_payment")
    assert (state(first), state(second)) == before
    # an unknown challenge (never issued) is refused too
    stranger = laptop.get({"challenge": b64u(b"\7" * 32)})
    refused(approve(alice, first, stranger), 400, "approval_challenge_unknown")
    assert (state(first), state(second)) == before


@pytest.mark.chain
def test_another_users_passkey_and_payment_are_refused(people) -> None:
    alice, bob, _laptop = people
    mallory_key = register_passkey(bob, "Mallory's key")
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    before = state(payment_id)
    # bob's passkey over alice's challenge, sent by alice
    refused(approve(alice, payment_id, mallory_key.get(options["public_key"])), 400, "passkey_unknown")
    # bob cannot ask for options for, or approve, alice's payment (it is not his)
    refused(options_for(bob, payment_id), 404, "payment_not_found")
    refused(approve(bob, payment_id, mallory_key.get(options["public_key"])), 404, "payment_not_found")
    assert state(payment_id) == before
    assert PaymentApproval.objects.count() == 1


@pytest.mark.chain
def test_a_payment_no_longer_waiting_refuses_options_and_approvals(people) -> None:
    alice, bob, laptop = people
    # not needing an approval
    small = alice.pay(bob.email, "USDC", "5").json()
    refused(options_for(alice, small["id"]), 409, "approval_not_needed")
    # cancelled while the prompt was open
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    assert alice.post(f"/api/v1/payments/{payment_id}/cancel", {}).json()["status"] == "rejected"
    before = state(payment_id)
    refused(approve(alice, payment_id, laptop.get(options["public_key"])), 409, "payment_not_approvable")
    refused(options_for(alice, payment_id), 409, "payment_not_approvable")
    assert state(payment_id) == before
    refused(options_for(alice, str(uuid.uuid4())), 404, "payment_not_found")
    refused(options_for(alice, "not-a-uuid"), 404, "payment_not_found")


@pytest.mark.chain
def test_cancel_during_the_approval_releases_the_reservation(people, tokens) -> None:  # noqa: ANN001
    alice, bob, _laptop = people
    wallet = User.objects.get(email=alice.email).wallet
    client = get_chain_client()
    payment_id = awaiting(alice, bob, "20")
    options_for(alice, payment_id)
    assert available_balance(client=client, wallet=wallet, token=tokens["USDC"]) == 80 * USDC
    assert wallet_usage(wallet=wallet, token=tokens["USDC"]).spent.get("daily_cap", 0) == 20 * USDC
    # when the prompt is cancelled and the sender cancels the payment
    assert alice.post(f"/api/v1/payments/{payment_id}/cancel", {}).json()["status"] == "rejected"
    # then the funds and the limits are released; nothing was signed
    assert available_balance(client=client, wallet=wallet, token=tokens["USDC"]) == 100 * USDC
    assert wallet_usage(wallet=wallet, token=tokens["USDC"]).spent.get("daily_cap", 0) == 0
    assert PaymentAttempt.objects.filter(payment_id=payment_id).count() == 0


@pytest.mark.chain
def test_an_expired_payment_refuses_its_approval_and_is_released(people, tokens) -> None:  # noqa: ANN001
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    payment = Payment.objects.get(pk=payment_id)
    # the payment's approval window passes before the assertion arrives
    Payment.objects.filter(pk=payment_id).update(expires_at=payment.created_at)
    before = state(payment_id)
    refused(approve(alice, payment_id, laptop.get(options["public_key"])), 409, "payment_expired")
    assert state(payment_id) == before
    assert payments_expire_due() == 1
    wallet = User.objects.get(email=alice.email).wallet
    assert available_balance(client=get_chain_client(), wallet=wallet, token=tokens["USDC"]) == 100 * USDC
    refused(approve(alice, payment_id, laptop.get(options["public_key"])), 409, "payment_not_approvable")


# --- the payment page ---


@pytest.mark.chain
def test_the_payment_page_asks_to_approve_on_the_device_and_shows_1_of_2(people) -> None:
    alice, bob, laptop = people
    register_passkey(alice, "Phone")
    payment_id = awaiting(alice, bob, "60")
    alice.client.force_login(User.objects.get(email=alice.email))
    page = alice.client.get(f"/wallet/payments/{payment_id}/").content.decode()
    assert "Approve on your device." in page
    assert 'data-testid="payment-approve"' in page
    assert f'data-approve-url="/api/v1/payments/{payment_id}/approve"' in page
    assert "payments/approval.js" in page
    assert "Waiting for your approval" in page
    assert '0 of 2 approvals' in page
    assert f'href="http://testserver/wallet/payments/{payment_id}/"' in page
    assert 'data-testid="approval-qr"' in page
    # one passkey approves (on this device): the live part says 1 of 2 and stays
    options = options_for(alice, payment_id).json()
    assert approve(alice, payment_id, laptop.get(options["public_key"])).status_code == 200
    part = alice.client.get(f"/wallet/payments/{payment_id}/?part=approval", HTTP_HX_REQUEST="true")
    assert "1 of 2 approvals" in part.content.decode()
    assert "HX-Refresh" not in part
    # once it stops waiting (cancelled here), the live part reloads the page, which offers no approval
    alice.post(f"/api/v1/payments/{payment_id}/cancel", {})
    part = alice.client.get(f"/wallet/payments/{payment_id}/?part=approval", HTTP_HX_REQUEST="true")
    assert part["HX-Refresh"] == "true"
    page = alice.client.get(f"/wallet/payments/{payment_id}/").content.decode()
    assert 'data-testid="payment-approve"' not in page
    assert "Cancelled: nothing was sent" in page


# --- race: two devices approving at once ---


@postgresql_only
@pytest.mark.chain
def test_two_passkeys_approving_at_once_sign_the_payment_exactly_once(transactional_db, tokens, monkeypatch,
                                                                      settings) -> None:  # noqa: ANN001
    # given a payment needing 2 of 2 and both devices' assertions over their own challenges (a custodial wallet:
    # the server's lock is under test)
    monkeypatch.setattr("relayer.outbox.enqueue_send", lambda kind, owner_id: None)  # the test only counts signing
    settings.PAYMENTS_PROTECT_ON_PASSKEY = False
    SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], passkey_above=10 * USDC,
                                  two_passkeys_above=50 * USDC)
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "100")
    laptop, phone = register_passkey(alice, "Laptop"), register_passkey(alice, "Phone")
    payment_id = awaiting(alice, bob, "60")
    user = User.objects.get(email=alice.email)
    first = laptop.get(approvals.approval_options(user=user, payment_id=payment_id).public_key)
    second = phone.get(approvals.approval_options(user=user, payment_id=payment_id).public_key)
    outcome: dict[str, object] = {}

    def other_device() -> None:
        try:
            outcome["second"] = approvals.approval_submit(user=user, payment_id=payment_id, credential=second).progress
        except Exception as exc:  # noqa: BLE001 - the assertion below says which
            outcome["second"] = getattr(exc, "code", repr(exc))
        finally:
            connection.close()

    # when the first approval's transaction holds the payment and the second device's arrives meanwhile
    thread = threading.Thread(target=other_device)
    with transaction.atomic():
        result = approvals.approval_submit(user=user, payment_id=payment_id, credential=first)
        assert result.progress == approvals.Progress(received=1, required=2)
        thread.start()
        assert wait_for_lock_waiters(1, give_up_when=lambda: not thread.is_alive())
    thread.join()
    # then the second saw the first's approval: 2 of 2, signed once
    assert outcome == {"second": approvals.Progress(received=2, required=2)}
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "approved"
    assert PaymentAttempt.objects.filter(payment=payment).count() == 1
    assert PaymentApproval.objects.filter(payment=payment, used_at__isnull=False).count() == 2


# --- Secure Payment Confirmation (the browser shows payee and total; clientDataJSON type payment.get) ---


def spc_assertion(soft: SoftAuthenticator, options: dict[str, Any], *, payment: dict[str, Any] | None = None,
                  flags: int = UP | UV, kind: str = "payment.get") -> dict[str, Any]:
    """What Chromium returns from a ``secure-payment-confirmation`` PaymentRequest (``response.details``): an
    assertion whose clientDataJSON has type ``payment.get`` and the ``payment`` the sheet showed."""
    details = options["secure_payment_confirmation"]
    shown = payment if payment is not None else {
        "rpId": "localhost", "topOrigin": soft.origin, "payeeName": details["payeeName"],
        "total": details["total"], "instrument": details["instrument"]}
    soft.counter += 1
    auth_data = hashlib.sha256(soft.rp_id.encode()).digest() + bytes([flags]) + soft.counter.to_bytes(4, "big")
    client_data = json.dumps({"type": kind, "challenge": options["public_key"]["challenge"], "origin": soft.origin,
                              "crossOrigin": False, "payment": shown}).encode()
    signature = soft.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
    return {"id": b64u(soft.credential_id), "rawId": b64u(soft.credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64u(client_data), "authenticatorData": b64u(auth_data),
                         "signature": b64u(signature), "userHandle": b64u(soft.user_handle)},
            "clientExtensionResults": {}}


@pytest.mark.chain
def test_a_secure_payment_confirmation_assertion_approves_what_the_browser_showed(people) -> None:
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    assert options["secure_payment_confirmation"] == {
        "payeeName": f"{bob.email} (USDC)", "payeeOrigin": None, "total": {"currency": "USD", "value": "20"},
        "instrument": {"displayName": "Numpay wallet, 20 USDC", "icon": "/static/icons/icon-192.png"}}
    before = state(payment_id)
    # the sheet showed another amount, another payee, or the user was not verified: refused, nothing changed
    shown = {"rpId": "localhost", "topOrigin": laptop.origin, "payeeName": f"{bob.email} (USDC)",
             "total": {"currency": "USD", "value": "20"}, "instrument": {"displayName": "Numpay wallet, 20 USDC"}}
    for tampered in ({**shown, "total": {"currency": "USD", "value": "2"}}, {**shown, "payeeName": "mallory"},
                     {**shown, "rpId": "evil.example"}, {**shown, "topOrigin": "https://evil.example"}):
        refused(approve(alice, payment_id, spc_assertion(laptop, options, payment=tampered)), 400,
                "passkey_assertion_invalid")
    refused(approve(alice, payment_id, spc_assertion(laptop, options, flags=UP)), 400, "passkey_assertion_invalid")
    refused(approve(alice, payment_id, spc_assertion(laptop, options, kind="payment.create")), 400,
            "passkey_assertion_invalid")
    assert state(payment_id) == before
    # when the assertion carries exactly what the server asked the browser to show
    response = approve(alice, payment_id, spc_assertion(laptop, options))
    # then it approves the payment (verified with cryptography: py_webauthn refuses the payment.get type)
    assert response.status_code == 200, response.content
    assert response.json()["payment"]["status"] == "approved"


def test_secure_payment_confirmation_is_offered_only_for_a_token_with_an_iso_currency(tokens) -> None:  # noqa: ANN001
    from wallets.models import Wallet

    payment = Payment(id=uuid.UUID(int=1), wallet=Wallet(address="9" * 44), recipient_input="bob@example.com",
                      recipient_address="8" * 44, token=tokens["SOL"], amount=10**9)
    assert approvals.secure_payment_details(payment) is None
    payment.token, payment.amount, payment.network_fee = tokens["USDC"], 12_500_000, 500_000
    assert approvals.secure_payment_details(payment)["total"] == {"currency": "USD", "value": "13"}


@pytest.mark.chain
def test_a_wallet_switching_to_protected_mode_defers_options_and_outdates_earlier_approvals(people) -> None:
    from payments.models import WalletProtection

    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()  # issued while the wallet is custodial
    wallet = User.objects.get(email=alice.email).wallet
    # given the switch to protected mode is on its way (signed, not landed)
    protection = WalletProtection.objects.create(wallet=wallet, public_key=b"\2" * 33, expires_at=wallet.created_at)
    before = state(payment_id)
    refused(options_for(alice, payment_id), 409, "wallet_protection_pending")
    # and once it landed, an approval issued before it is refused: its transaction would fail on-chain
    WalletProtection.objects.filter(pk=protection.pk).update(status="confirmed")
    refused(approve(alice, payment_id, laptop.get(options["public_key"])), 409, "approval_outdated")
    assert state(payment_id) == before
    assert PaymentApproval.objects.filter(payment_id=payment_id).count() == 1


@pytest.mark.chain
def test_the_admin_shows_a_payments_approvals_without_assertions(people, admin_client) -> None:  # noqa: ANN001
    alice, bob, laptop = people
    payment_id = awaiting(alice, bob, "20")
    options = options_for(alice, payment_id).json()
    assert approve(alice, payment_id, laptop.get(options["public_key"])).status_code == 200
    page = admin_client.get(f"/admin/payments/payment/{payment_id}/change/").content.decode()
    assert "Payment approvals" in page
    assert "Laptop" in page  # the approving passkey
    approval = PaymentApproval.objects.get()
    assert approval.challenge_hash not in page
    assert b64u(bytes(approval.signature)) not in page
    assert admin_client.get("/admin/payments/walletprotection/").status_code == 200
