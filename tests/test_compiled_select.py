"""``numpay.core.sql.CompiledSelect``: a hot ``select_related`` lock compiled once gives exactly what the ORM
gives (every column of every related row, a missing relation as ``None``), keeps Django's refusal of a row
lock outside a transaction, and refuses a shape it cannot re-use."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Model
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from numpay.core.sql import CompiledSelect
from payments import services
from payments.lock_objects import payment_lock_for_step, payment_qs_select_for_update
from payments.requests import PaymentRequest
from wallets.faucet import faucet_fund
from wallets.lock_objects import wallet_lock_with_key, wallet_qs_select_for_update_with_key
from wallets.models import Wallet, WalletKey


def columns(instance: Model | None) -> dict[str, Any] | None:
    """Every concrete column of ``instance`` (``None`` stays ``None``)."""
    if instance is None:
        return None
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_the_wallet_lock_with_its_key_is_the_orms(make_user) -> None:  # noqa: ANN001
    wallets = [make_user().wallet for _ in range(2)]
    for wallet in wallets:
        with transaction.atomic():
            compiled = wallet_lock_with_key(wallet.pk)
            orm = wallet_qs_select_for_update_with_key().get(pk=wallet.pk)
        assert columns(compiled) == columns(orm)
        assert compiled.key is not None
        assert columns(compiled.key) == columns(orm.key)


@pytest.mark.django_db
def test_a_wallet_without_a_key_envelope_has_none_and_a_missing_wallet_raises(make_user) -> None:  # noqa: ANN001
    wallet = make_user().wallet
    WalletKey.objects.filter(wallet=wallet).delete()
    with transaction.atomic():
        compiled = wallet_lock_with_key(wallet.pk)
        with CaptureQueriesContext(connection) as queries:
            assert not hasattr(compiled, "key")  # known to be missing, as the ORM's select_related marks it
        assert len(queries) == 0
        assert columns(compiled) == columns(Wallet.objects.get(pk=wallet.pk))
        with pytest.raises(Wallet.DoesNotExist):
            wallet_lock_with_key(uuid.uuid4())


@pytest.mark.chain
@pytest.mark.django_db
def test_the_payment_lock_of_the_outbox_is_the_orms(make_user, tokens) -> None:  # noqa: ANN001
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=10_000_000)
    to_bob, _ = services.payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="1"),
                                        idempotency_key=str(uuid.uuid4()))
    to_address, _ = services.payment_create(
        user=alice, request=PaymentRequest(to=str(_an_address()), token="USDC", amount="1"),
        idempotency_key=str(uuid.uuid4()))
    assert to_bob.recipient_wallet_id is not None
    assert to_address.recipient_wallet_id is None
    for payment in (to_bob, to_address):
        with transaction.atomic():
            compiled = payment_lock_for_step(payment.pk)
            orm = (payment_qs_select_for_update().select_related("token", "wallet", "sender", "recipient_wallet")
                   .get(pk=payment.pk))
        assert columns(compiled) == columns(orm)
        for relation in ("token", "wallet", "sender", "recipient_wallet"):
            assert columns(getattr(compiled, relation)) == columns(getattr(orm, relation)), relation
    with transaction.atomic():
        assert payment_lock_for_step(uuid.uuid4()) is None


def _an_address() -> Any:
    from solders.keypair import Keypair

    return Keypair().pubkey()


@pytest.mark.django_db(transaction=True)
def test_a_row_lock_outside_a_transaction_is_refused_as_django_does(make_user) -> None:  # noqa: ANN001
    if not connection.features.has_select_for_update:
        pytest.skip(f"{connection.vendor} has no row locks: Django leaves FOR UPDATE out there too")
    wallet = make_user().wallet
    with pytest.raises(TransactionManagementError):
        wallet_lock_with_key(wallet.pk)


@pytest.mark.django_db
def test_a_shape_that_uses_its_value_twice_is_refused_at_first_use(make_user) -> None:  # noqa: ANN001
    wallet = make_user().wallet
    twice = CompiledSelect(lambda pk: Wallet.objects.filter(pk=pk) | Wallet.objects.filter(pk=pk),
                           params=[(Wallet, "id")])
    with pytest.raises(ImproperlyConfigured):
        twice.all(wallet.pk)
    by_user = CompiledSelect(lambda user_id: Wallet.objects.filter(user_id=user_id).order_by("created_at"),
                             params=[(Wallet, "user")])
    assert [found.pk for found in by_user.all(wallet.user_id)] == [wallet.pk]
    assert by_user.all(wallet.user_id + 10**6) == []
