"""Helpers for payment tests: API sign-up, faucet, paying, waiting, reading the chain."""

from __future__ import annotations

import uuid
from typing import Any

from django.test import Client
from solders.pubkey import Pubkey
from solders.signature import Signature

from numpay.core.solana import get_chain_client
from payments.models import Payment

from .helpers import wait_until


class ApiUser:
    """A user who signed up through the allauth headless app API and talks to the REST API with a token."""

    def __init__(self, email: str, password: str = "correct-Horse-9"):  # noqa: S107
        self.client = Client()
        response = self.client.post("/_allauth/app/v1/auth/signup", {"email": email, "password": password},
                                    content_type="application/json")
        assert response.status_code == 200, response.content
        self.token = response.json()["meta"]["session_token"]
        self.email = email
        self.address = self.get("/api/v1/wallet").json()["address"]

    def get(self, path: str) -> Any:
        return self.client.get(path, HTTP_X_SESSION_TOKEN=self.token)

    def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        return self.client.post(path, body, content_type="application/json", HTTP_X_SESSION_TOKEN=self.token, **headers)

    def faucet(self, token: str, amount: str) -> None:
        response = self.post("/api/v1/faucet", {"token": token, "amount": amount})
        assert response.status_code == 201, response.content

    def pay(self, to: str, token: str, amount: str, memo: str = "", key: str | None = None) -> Any:
        body = {"to": to, "token": token, "amount": amount}
        if memo:
            body["memo"] = memo
        return self.post("/api/v1/payments", body, HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def wait_terminal(payment_ids: list[str], timeout: float = 90.0) -> dict[str, str]:
    """Wait until every payment is terminal; :returns: ``{id: status}``."""
    ids = [str(i) for i in payment_ids]

    def done() -> bool:
        return not Payment.objects.filter(pk__in=ids, status__in=Payment.OPEN_STATUSES).exists()

    assert wait_until(done, timeout=timeout, interval=0.2), dict(
        Payment.objects.filter(pk__in=ids, status__in=Payment.OPEN_STATUSES).values_list("id", "status"))
    return {str(k): v for k, v in Payment.objects.filter(pk__in=ids).values_list("id", "status")}


def token_balance(address: str, mint: str) -> int:
    return get_chain_client().get_token_balance(Pubkey.from_string(address), Pubkey.from_string(mint))


def sol_balance(address: str) -> int:
    return get_chain_client().get_balance(Pubkey.from_string(address))


def transaction_json(signature: str) -> dict[str, Any]:
    tx = wait_until(lambda: get_chain_client().get_transaction_json(Signature.from_string(signature)), timeout=10)
    assert tx is not None
    return tx


def stored_payment(*, sender: Any, to: str, amount: str, monkeypatch: Any, token: str = "USDC") -> Payment:  # noqa: S107
    """A payment created, signed and stored by ``payment_create`` whose submit job never reaches the
    broker (as if the message were lost): the test decides what runs next."""
    from payments.requests import PaymentRequest
    from payments.services import payment_create

    monkeypatch.setattr("relayer.outbox.enqueue_send", lambda kind, owner_id: None)
    payment, created = payment_create(user=sender, request=PaymentRequest(
        to=to, token=token, amount=amount), idempotency_key=str(uuid.uuid4()))
    assert created
    return payment
