"""The relayer admin: read-only ledger and fee payer, balance shown in SOL and lamports, no key material."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from relayer import services
from relayer.models import FeePayer, SponsorshipCharge, SponsorshipDay
from relayer.selectors import sponsorship_today

pytestmark = pytest.mark.django_db


class FakeChain:
    def __init__(self, balance: int):
        self.balance = balance

    def get_balance(self, address):  # noqa: ANN001, ANN201
        return self.balance


def test_fee_payer_list_shows_balance_and_todays_spend_without_key_material(admin_client, settings, user, fee_payer):
    # given a checked fee payer and 12_345 lamports sponsored today
    FeePayer.objects.create(address=str(fee_payer.pubkey()), last_balance_lamports=1_500_000_000,
                            last_checked_at=timezone.now())
    SponsorshipDay.objects.create(user=user, day=sponsorship_today(), reserved_lamports=12_345)

    response = admin_client.get(reverse("admin:relayer_feepayer_changelist"))

    content = response.content.decode()
    assert response.status_code == 200
    assert str(fee_payer.pubkey()) in content
    assert "1.5" in content
    assert "1500000000" in content
    assert "12345" in content
    assert "Check balance now" in content
    assert settings.RELAYER_FEE_PAYER_KEYPAIR not in content


def test_check_balance_now_reads_the_chain_and_is_logged(admin_client, monkeypatch, fee_payer):
    monkeypatch.setattr(services, "get_chain_client", lambda: FakeChain(2_000_000_000))

    response = admin_client.post(reverse("admin:relayer_feepayer_check"))

    assert response.status_code == 302
    row = FeePayer.objects.get()
    assert (row.address, row.last_balance_lamports, row.is_below_threshold) == (
        str(fee_payer.pubkey()), 2_000_000_000, False)
    assert LogEntry.objects.get().change_message == "Balance checked: 2 SOL (2000000000 lamports)."


def test_check_balance_now_refuses_get(admin_client, fee_payer):
    response = admin_client.get(reverse("admin:relayer_feepayer_check"))

    assert response.status_code == 405
    assert not FeePayer.objects.exists()


def test_check_balance_action_on_selected_rows(admin_client, monkeypatch, fee_payer):
    monkeypatch.setattr(services, "get_chain_client", lambda: FakeChain(5))
    row = FeePayer.objects.create(address=str(fee_payer.pubkey()))

    response = admin_client.post(reverse("admin:relayer_feepayer_changelist"),
                                 {"action": "check_balance_now", "_selected_action": [row.pk]})

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.last_balance_lamports, row.is_below_threshold) == (5, True)


@pytest.mark.parametrize("model", [FeePayer, SponsorshipDay, SponsorshipCharge])
def test_relayer_rows_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, user, model):
    # given one row of each
    day = SponsorshipDay.objects.create(user=user, day=sponsorship_today(), reserved_lamports=10_000)
    charge = SponsorshipCharge.objects.create(user=user, day=day.day, reference=uuid.uuid4(), lamports=10_000,
                                              estimated_lamports=10_000)
    fee_payer = FeePayer.objects.create(address="11111111111111111111111111111111")
    obj = {FeePayer: fee_payer, SponsorshipDay: day, SponsorshipCharge: charge}[model]
    info = model._meta.app_label, model._meta.model_name

    listing = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)))
    add = admin_client.get(reverse("admin:{}_{}_add".format(*info)))
    change = admin_client.post(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]), {})
    delete = admin_client.post(reverse("admin:{}_{}_delete".format(*info), args=[obj.pk]), {"post": "yes"})

    assert listing.status_code == 200
    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    day.refresh_from_db()
    assert day.reserved_lamports == 10_000
