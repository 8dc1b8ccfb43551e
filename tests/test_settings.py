"""Production settings refuse to start without their secrets and pass `check --deploy` with them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from solders.keypair import Keypair

ROOT = Path(__file__).resolve().parent.parent


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NUMPAY_KEK", "RELAYER_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "numpay.settings.production",
        "DJANGO_SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
        "DJANGO_ALLOWED_HOSTS": "pay.example.com",
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'prod-check.sqlite3'}"),
        "NUMPAY_KEKS": f"prod-1:{base64.b64encode(os.urandom(32)).decode()}",
        "NUMPAY_KEK_CURRENT_ID": "prod-1",
        "RELAYER_FEE_PAYER_KEYPAIR": json.dumps(list(bytes(Keypair()))),
        "SOLANA_CLUSTER": "devnet",
    })
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_production_settings_pass_check_deploy() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "NUMPAY_KEKS",
                                     "NUMPAY_KEK_CURRENT_ID", "RELAYER_FEE_PAYER_KEYPAIR"])
def test_production_settings_refuse_to_start_without_a_secret(missing: str) -> None:
    env = _production_env(**{missing: ""})
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    expected = "RELAYER_FEE_PAYER_KEYPAIR_PATH" if missing == "RELAYER_FEE_PAYER_KEYPAIR" else missing
    assert expected in result.stderr
    # and the error never echoes another secret's value
    assert env["DJANGO_SECRET_KEY" if missing != "DJANGO_SECRET_KEY" else "NUMPAY_KEKS"] not in result.stderr


def test_openapi_schema_documents_payments_and_error_codes(client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    assert {"/api/v1/wallet", "/api/v1/faucet", "/api/v1/payments", "/api/v1/payments/{payment_id}"} <= set(paths)
    post = paths["/api/v1/payments"]["post"]
    assert {"201", "400", "422", "429", "503"} <= set(post["responses"])
    assert "insufficient_funds" in post["responses"]["400"]["description"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    assert schema["components"]["securitySchemes"]["sessionToken"] == {
        "type": "apiKey", "in": "header", "name": "X-Session-Token",
        "description": "From POST /_allauth/app/v1/auth/login or /signup (meta.session_token)."}
    assert client.get("/api/docs/").status_code == 200
