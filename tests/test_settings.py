"""Production settings refuse to start without their secrets and pass `check --deploy` with them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from solders.keypair import Keypair

ROOT = Path(__file__).resolve().parent.parent


def _production_env(var_dir: Path | None = None, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "NUMPAY_KEK", "RELAYER_", "REDIS_URL", "CELERY_BROKER_URL", "ALLAUTH_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "numpay.settings.production",
        "DJANGO_SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
        "DJANGO_ALLOWED_HOSTS": "pay.example.com",
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'prod-check.sqlite3'}"),
        "NUMPAY_KEKS": f"prod-1:{base64.b64encode(os.urandom(32)).decode()}",
        "NUMPAY_KEK_CURRENT_ID": "prod-1",
        "RELAYER_FEE_PAYER_KEYPAIR": json.dumps(list(bytes(Keypair()))),
        "SOLANA_CLUSTER": "devnet",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
        "ALLAUTH_TRUSTED_PROXY_COUNT": "1",
    })
    if var_dir is not None:
        env["NUMPAY_VAR_DIR"] = str(var_dir)
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def collected_var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A production var/ whose STATIC_ROOT was filled by ``collectstatic`` (as a deploy does)."""
    var_dir = tmp_path_factory.mktemp("prod-var")
    result = _manage("collectstatic", "--noinput", env=_production_env(var_dir))
    assert result.returncode == 0, result.stderr
    return var_dir


def test_production_settings_pass_check_deploy(collected_var_dir: Path) -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env(collected_var_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_and_the_web_server_refuse_uncollected_static_files(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    check = _manage("check", "--deploy", env=env)
    assert check.returncode != 0
    assert "numpay.E005" in check.stderr
    server = subprocess.run([sys.executable, "-c", "import numpay.wsgi"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert server.returncode != 0
    assert "ImproperlyConfigured: Static files are not collected" in server.stderr
    assert "collectstatic" in server.stderr


_SERVE = """
import json, re
import numpay.wsgi
from django.test import Client
client = Client(HTTP_HOST="pay.example.com")
page = client.get("/", secure=True)
css = re.search(r'href="(/static/css/numpay[^"]*\\.css)"', page.content.decode()).group(1)
docs = client.get("/api/docs/", secure=True)
print(json.dumps({"page": page.status_code, "csp": page.get("Content-Security-Policy"), "css": css,
                  "css_status": client.get(css, secure=True).status_code,
                  "docs": docs.status_code, "docs_html": docs.content.decode()}))
"""


def test_production_serves_hashed_static_files_with_a_csp_and_docs_without_a_cdn(collected_var_dir: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _SERVE], cwd=ROOT, env=_production_env(collected_var_dir),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert (served["page"], served["css_status"], served["docs"]) == (200, 200, 200)
    assert re.fullmatch(r"/static/css/numpay\.[0-9a-f]{12}\.css", served["css"])  # whitenoise, hashed name
    csp = dict(part.strip().split(" ", 1) for part in served["csp"].split(";"))
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    docs = served["docs_html"]
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle." in docs
    assert "cdn" not in docs.lower()
    assert "<script>" not in docs  # the init script is a separate file: no inline script for the CSP


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CELERY_BROKER_URL", "numpay-sqla+sqlite:///var/broker.sqlite3", "not the embedded SQLite one"),
    ("REDIS_URL", "locmem://", "REDIS_URL must be a redis://"),
    ("ALLAUTH_TRUSTED_PROXY_COUNT", "-1", "ALLAUTH_TRUSTED_PROXY_COUNT must be a whole number"),
])
def test_production_settings_refuse_embedded_components(name: str, value: str, message: str) -> None:
    result = _manage("check", env=_production_env(**{name: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_reads_the_trusted_proxy_count_for_allauth_and_drf() -> None:
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.ALLAUTH_TRUSTED_PROXY_COUNT, settings.REST_FRAMEWORK['NUM_PROXIES'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_production_env(ALLAUTH_TRUSTED_PROXY_COUNT="2"),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2"]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "NUMPAY_KEKS",
                                     "NUMPAY_KEK_CURRENT_ID", "RELAYER_FEE_PAYER_KEYPAIR", "REDIS_URL",
                                     "CELERY_BROKER_URL", "ALLAUTH_TRUSTED_PROXY_COUNT"])
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
