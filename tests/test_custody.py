"""Custodial key custody: envelopes never leak the key; wrong KEK / tampering fail loudly; rotation works."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import base58
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from django.db import connection, transaction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from wallets import custody
from wallets.lock_objects import wallet_qs_select_for_update_with_key
from wallets.models import Wallet, WalletKey
from wallets.services import kek_rotate, wallet_sign

pytestmark = pytest.mark.django_db


def _kek(seed: bytes) -> str:
    return base64.b64encode(hashlib.sha256(seed).digest()).decode()


def _reveal_seed(key: WalletKey) -> bytes:
    """Test-only: decrypt an envelope with the configured KEK to learn what must never be stored."""
    aad = custody.wallet_aad(wallet_id=key.wallet_id, address=key.wallet.signing_address)
    data_key = custody.get_kek_provider().unwrap(key.kek_id, bytes(key.wrapped_data_key), context=aad)
    blob = bytes(key.ciphertext)
    return AESGCM(data_key).decrypt(blob[:12], blob[12:], aad)


def _whole_database_as_bytes() -> bytes:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    chunks = [out.getvalue().encode()]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview | bytearray):
                        chunks += [bytes(value), bytes(value).hex().encode()]
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def test_signing_uses_the_wallet_key(make_user) -> None:
    # given a provisioned wallet
    wallet = make_user().wallet
    message = b"numpay test message"
    # when it signs
    signature = wallet_sign(wallet=wallet, message=message)
    # then the signature verifies against the wallet address
    assert signature.verify(Pubkey.from_string(wallet.signing_address), message)


def test_database_never_contains_the_key_in_any_form(make_user) -> None:
    # given several wallets
    users = [make_user() for _ in range(3)]
    dump = _whole_database_as_bytes()
    for user in users:
        key = WalletKey.objects.select_related("wallet").get(wallet=user.wallet)
        seed = _reveal_seed(key)
        keypair = Keypair.from_seed(seed)
        secret = bytes(keypair)
        assert str(keypair.pubkey()) == user.wallet.signing_address
        # then neither the seed nor the 64-byte secret key appear raw, hex, base64 or base58
        for form in (seed, seed.hex().encode(), base64.b64encode(seed), base58.b58encode(seed),
                     secret, secret.hex().encode(), base64.b64encode(secret), base58.b58encode(secret),
                     str(list(secret)).encode()):
            assert form not in dump
        # and the address is there (the dump is real)
        assert user.wallet.signing_address.encode() in dump


def test_wrong_kek_fails_loudly(make_user, settings) -> None:
    wallet = make_user().wallet
    settings.NUMPAY_KEKS = f"{settings.NUMPAY_KEK_CURRENT_ID}:{_kek(b'another key')}"
    with pytest.raises(custody.CustodyError, match="could not be unwrapped"):
        wallet_sign(wallet=wallet, message=b"m")


def test_unknown_kek_id_fails_loudly(make_user, settings) -> None:
    wallet = make_user().wallet
    settings.NUMPAY_KEKS = f"other:{_kek(b'other')}"
    settings.NUMPAY_KEK_CURRENT_ID = "other"
    with pytest.raises(custody.CustodyError, match="not configured"):
        wallet_sign(wallet=wallet, message=b"m")


def test_tampered_ciphertext_fails_loudly(make_user) -> None:
    wallet = make_user().wallet
    key = WalletKey.objects.get(wallet=wallet)
    blob = bytearray(bytes(key.ciphertext))
    blob[20] ^= 0x01
    WalletKey.objects.filter(pk=key.pk).update(ciphertext=bytes(blob))
    with pytest.raises(custody.CustodyError, match="tampered"):
        wallet_sign(wallet=wallet, message=b"m")


def test_envelope_moved_to_another_wallet_fails_aad_check(make_user) -> None:
    # given two wallets, when A's envelope is copied onto B's row
    wallet_a, wallet_b = make_user().wallet, make_user().wallet
    key_a = WalletKey.objects.get(wallet=wallet_a)
    WalletKey.objects.filter(wallet=wallet_b).update(ciphertext=key_a.ciphertext,
                                                     wrapped_data_key=key_a.wrapped_data_key)
    # then B cannot sign with it
    with pytest.raises(custody.CustodyError):
        wallet_sign(wallet=Wallet.objects.get(pk=wallet_b.pk), message=b"m")


def test_rotation_rewraps_every_key_and_all_still_sign(make_user, settings) -> None:
    # given wallets under the old KEK
    wallets = [make_user().wallet for _ in range(5)]
    assert settings.NUMPAY_KEK_CURRENT_ID != "kek-2"
    ciphertexts = {k.pk: bytes(k.ciphertext) for k in WalletKey.objects.all()}
    new_key = base64.b64encode(os.urandom(32)).decode()
    # when a new KEK becomes current and rotation runs in small batches
    settings.NUMPAY_KEKS = f"{settings.NUMPAY_KEKS},kek-2:{new_key}"
    settings.NUMPAY_KEK_CURRENT_ID = "kek-2"
    assert kek_rotate(batch_size=2) == 5
    # then every envelope is under the new KEK, the seed ciphertext untouched, and re-running does nothing
    assert set(WalletKey.objects.values_list("kek_id", flat=True)) == {"kek-2"}
    assert {k.pk: bytes(k.ciphertext) for k in WalletKey.objects.all()} == ciphertexts
    assert kek_rotate() == 0
    # and with the old KEK removed, every wallet still signs
    settings.NUMPAY_KEKS = f"kek-2:{new_key}"
    for wallet in wallets:
        assert wallet_sign(wallet=wallet, message=b"after").verify(Pubkey.from_string(wallet.signing_address), b"after")


def test_the_envelope_read_with_the_lock_signs_without_another_read(make_user, django_assert_num_queries) -> None:
    # given a wallet locked with its envelope (payment_create's lock)
    wallet_id = make_user().wallet.pk
    with transaction.atomic():
        with django_assert_num_queries(1):
            wallet = wallet_qs_select_for_update_with_key().get(pk=wallet_id)
        # when it signs, then no further statement is run and the signature verifies
        with django_assert_num_queries(0):
            signature = wallet_sign(wallet=wallet, message=b"m", envelope=wallet.key)
    assert signature.verify(Pubkey.from_string(wallet.signing_address), b"m")


def test_an_envelope_read_before_a_rotation_whose_old_kek_is_gone_is_read_again(make_user, settings) -> None:
    # given a wallet object holding its envelope under the old KEK
    wallet = wallet_qs_select_for_update_with_key().get(pk=make_user().wallet.pk)
    old_kek_id = wallet.key.kek_id
    # when the KEK rotates and the old one is removed
    new_key = _kek(b"rotated")
    settings.NUMPAY_KEKS = f"{settings.NUMPAY_KEKS},kek-9:{new_key}"
    settings.NUMPAY_KEK_CURRENT_ID = "kek-9"
    assert kek_rotate() == 1
    settings.NUMPAY_KEKS = f"kek-9:{new_key}"
    # then the wallet still signs (the envelope is read again), and the held one was the old KEK's
    assert old_kek_id != "kek-9"
    assert wallet_sign(wallet=wallet, message=b"m", envelope=wallet.key).verify(
        Pubkey.from_string(wallet.signing_address), b"m")


def test_rotate_kek_command_reports_count(make_user, settings) -> None:
    make_user()
    settings.NUMPAY_KEKS = f"{settings.NUMPAY_KEKS},kek-3:{_kek(b'three')}"
    settings.NUMPAY_KEK_CURRENT_ID = "kek-3"
    out = io.StringIO()
    call_command("rotate_kek", stdout=out)
    assert out.getvalue().strip() == "Re-wrapped 1 data key(s)."


def test_bulk_provisioning_gives_each_user_one_signing_wallet(make_user) -> None:
    from accounts.models import User
    from wallets.claims import wallet_reserve_for_email
    from wallets.services import wallets_provision_bulk

    already = make_user()
    reserved = wallet_reserve_for_email(email="waiting@example.com")
    users = [User.objects.create_user(email=f"bulk{i}@example.com", password="pw-Numpay-1") for i in range(5)]
    waiting = User.objects.create_user(email="Waiting@example.com", password="pw-Numpay-1")
    before = Wallet.objects.get(user=already)

    created = wallets_provision_bulk(users=[already, *users, waiting], batch_size=3)

    assert created == 6
    assert Wallet.objects.get(user=already) == before  # skipped, not replaced
    assert Wallet.objects.get(user=waiting).pk == reserved.pk  # the reserved wallet, through the claim path
    wallets = list(Wallet.objects.filter(user__in=users))
    assert len(wallets) == 5
    assert len({w.address for w in wallets}) == 5
    message = b"numpay bulk provisioning"
    for wallet in wallets:
        assert wallet.kind == Wallet.Kind.SMART
        assert wallet.config_address
        signature = wallet_sign(wallet=wallet, message=message)
        assert signature.verify(Pubkey.from_string(wallet.signing_address), message)
    assert wallets_provision_bulk(users=users) == 0  # idempotent
    assert WalletKey.objects.filter(wallet__user__in=users).count() == 5
