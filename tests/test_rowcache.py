"""Rows every payment reads are cached across processes and forgotten on every write (issue 13 item 4):
the token (``wallets.services.token_get``) and the spending policies that apply
(``payments.policy_services.rules_for``)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from numpay.core.errors import ApplicationError
from payments.models import SpendingPolicy
from payments.policy_services import rules_for
from wallets.models import Token
from wallets.services import token_get

pytestmark = [pytest.mark.django_db]


def _token() -> Token:
    from django.conf import settings

    return Token.objects.create(cluster=settings.SOLANA_CLUSTER, symbol="TST", name="Test", decimals=2, mint="m",
                                token_program="p")


def test_the_token_is_read_once_then_forgotten_when_it_changes() -> None:
    token = _token()
    assert token_get(symbol="tst").pk == token.pk
    # a second read asks the cache, not the database
    with CaptureQueriesContext(connection) as queries:
        assert token_get(symbol="TST").account_creation_fee is None
    assert len(queries) == 0
    # when the operator changes it, the next read sees the change
    token.account_creation_fee = 5
    token.save()
    assert token_get(symbol="TST").account_creation_fee == 5
    # and when it is switched off, it is unknown at once
    token.is_active = False
    token.save()
    with pytest.raises(ApplicationError) as refused:
        token_get(symbol="TST")
    assert refused.value.code == "unknown_token"


def test_policies_are_forgotten_on_a_policy_write_and_on_a_group_membership_change(make_user) -> None:
    token = _token()
    user = make_user()
    SpendingPolicy.objects.create(name="Standard", scope="default", token=token, per_transaction_cap=100)
    assert [r.per_transaction_cap for r in rules_for(user=user, token=token)] == [100]
    with CaptureQueriesContext(connection) as queries:
        rules_for(user=user, token=token)
    assert len(queries) == 0
    # a group's policy applies as soon as the user joins the group
    group = Group.objects.create(name="Merchants")
    SpendingPolicy.objects.create(name="Merchants", scope="group", group=group, token=token, per_transaction_cap=900)
    assert [r.per_transaction_cap for r in rules_for(user=user, token=token)] == [100]
    user.groups.add(group)
    assert [r.per_transaction_cap for r in rules_for(user=user, token=token)] == [900]
    # an edit of the policy applies at once, and so does leaving the group
    policy = SpendingPolicy.objects.get(group=group)
    policy.per_transaction_cap = 800
    policy.save()
    assert [r.per_transaction_cap for r in rules_for(user=user, token=token)] == [800]
    user.groups.remove(group)
    assert [r.per_transaction_cap for r in rules_for(user=user, token=token)] == [100]
