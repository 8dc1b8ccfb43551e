"""The move of the payment models to ``payments`` keeps the tables and every row (state-only migration)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("wallets", "0002_payment_paymentattempt_paymentevent_depositcursor_and_more"), ("relayer", "0001_initial"),
          ("accounts", "0001_initial")]
AFTER_MOVE = [("payments", "0001_initial")]


def _migrate(targets: list[tuple[str, str]]):  # noqa: ANN202
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_migrating_a_database_with_payments_keeps_them() -> None:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        # given a database from before the move, with a payment, its attempt and its events
        old = _migrate(BEFORE)
        user = old.get_model("accounts", "User").objects.create(email="old@example.com", password="x")
        wallet = old.get_model("wallets", "Wallet").objects.create(user=user, address="A" * 44)
        token = old.get_model("wallets", "Token").objects.create(cluster="c", symbol="USDC", name="USD Coin", decimals=6,
                                                                 mint="M" * 44, token_program="P" * 44)
        payment_id = uuid.uuid4()
        payment = old.get_model("wallets", "Payment").objects.create(
            id=payment_id, sender=user, wallet=wallet, recipient_input="bob@example.com", recipient_address="B" * 44,
            token=token, amount=1_500_000, status="submitted", signature="S" * 88, idempotency_key="key-1")
        old.get_model("wallets", "PaymentAttempt").objects.create(
            payment=payment, number=1, signed_transaction=b"\x01\x02", signature="S" * 88, blockhash="H" * 44,
            last_valid_block_height=123, status="sent", send_count=2)
        old.get_model("wallets", "PaymentEvent").objects.create(payment=payment, from_status="approved",
                                                                to_status="submitted", note="attempt 1 sent")
        # when it is migrated to the latest state
        new = _migrate(latest)
        # then the same rows are read through the payments app, unchanged, and the open one has a deadline
        moved = new.get_model("payments", "Payment").objects.get(pk=payment_id)
        assert (moved.amount, moved.status, moved.signature, moved.idempotency_key) == (
            1_500_000, "submitted", "S" * 88, "key-1")
        assert moved.expires_at is not None
        assert moved.network_fee == 0
        attempt = new.get_model("payments", "PaymentAttempt").objects.get(payment_id=payment_id)
        assert (bytes(attempt.signed_transaction), attempt.last_valid_block_height, attempt.send_count) == (
            b"\x01\x02", 123, 2)
        assert list(new.get_model("payments", "PaymentEvent").objects.filter(payment_id=payment_id)
                    .values_list("to_status", "note")) == [("submitted", "attempt 1 sent")]
        tables = connection.introspection.table_names()
        assert {"wallets_payment", "wallets_paymentattempt", "wallets_paymentevent"} <= set(tables)
    finally:
        _migrate(latest)
