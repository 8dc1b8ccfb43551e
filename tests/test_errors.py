"""The error code registry: every raised code is registered, and malformed requests are 400 problem+json."""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path

import pytest

from numpay.core.errors import (
    REGISTRY,
    ApplicationError,
    ConflictError,
    NotFoundError,
    UnprocessableError,
)
from tests.helpers import parse_python

ROOT = Path(__file__).resolve().parent.parent
_SKIPPED_DIRS = {".venv", "var", "localnet", "bench", "node_modules", ".git"}
_ERROR_CLASSES = {"ApplicationError": None, "NotFoundError": 404, "ConflictError": 409, "UnprocessableError": 422}


def raised_codes(source: str) -> list[tuple[int, str, object]]:
    """``(line, class name, first argument)`` of every ``ApplicationError``-family call in ``source``; the
    argument is the code when it is a string literal, else the AST node (a code the scan cannot check)."""
    found = []
    for node in ast.walk(parse_python(source)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in _ERROR_CLASSES and node.args:
                first = node.args[0]
                code = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else first
                found.append((node.lineno, name, code))
    return found


def _project_sources() -> list[Path]:
    return [path for path in ROOT.rglob("*.py")
            if not _SKIPPED_DIRS & set(path.relative_to(ROOT).parts) and "tests" not in path.relative_to(ROOT).parts
            and path.relative_to(ROOT).as_posix() not in _MAPPING_MODULES]


#: Modules that build errors from codes held in tables (checked by their own test below).
_MAPPING_MODULES = {"numpay/core/errors.py", "numpay/core/api.py"}


def test_every_code_raised_in_the_tree_is_registered_with_the_raising_class_status() -> None:
    # given every ApplicationError / NotFoundError / ConflictError / UnprocessableError call outside tests
    sites = [(path.relative_to(ROOT), line, name, code) for path in _project_sources()
             for line, name, code in raised_codes(path.read_text())]
    assert len(sites) >= 40  # the scan sees the tree (money, wallets, relayer, payments, the API)
    # then each code is a literal, registered, with the status its class stands for
    not_literal = [(str(path), line) for path, line, _name, code in sites if not isinstance(code, str)]
    assert not_literal == []
    unregistered = [(str(path), line, code) for path, line, _name, code in sites if code not in REGISTRY]
    assert unregistered == []
    wrong_status = [(str(path), line, code) for path, line, name, code in sites
                    if _ERROR_CLASSES[name] is not None and REGISTRY[code].status != _ERROR_CLASSES[name]]
    assert wrong_status == []


def test_drf_exceptions_map_to_registered_codes_of_the_same_status() -> None:
    from numpay.core.api import _DRF_CODES

    assert {cls.__name__: (code, REGISTRY[code].status) for cls, code in _DRF_CODES.items()} == {
        "NotAuthenticated": ("not_authenticated", 401), "AuthenticationFailed": ("authentication_failed", 401),
        "PermissionDenied": ("permission_denied", 403), "NotFound": ("not_found", 404),
        "MethodNotAllowed": ("method_not_allowed", 405), "NotAcceptable": ("not_acceptable", 406),
        "Throttled": ("throttled", 429), "ParseError": ("malformed_request", 400),
        "UnsupportedMediaType": ("unsupported_media_type", 415), "ValidationError": ("invalid_request", 400)}
    assert all(cls.status_code == REGISTRY[code].status for cls, code in _DRF_CODES.items())


def test_the_scan_finds_an_unregistered_code() -> None:
    source = 'def f():\n    raise NotFoundError("no_such_code_anywhere", "x")\n'
    assert [(line, name, code) for line, name, code in raised_codes(source)] == [(2, "NotFoundError",
                                                                                  "no_such_code_anywhere")]
    assert "no_such_code_anywhere" not in REGISTRY


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(LookupError, match="no_such_code"):
        ApplicationError("no_such_code", "whatever")


def test_status_and_default_message_come_from_the_registry() -> None:
    error = ApplicationError("invalid_recipient")
    assert (error.status, error.message, error.title) == (
        400, "Payments to this address cannot be spent by anyone.", "Invalid recipient")
    assert ApplicationError("insufficient_funds", "You can send at most 1 USDC right now.").message == (
        "You can send at most 1 USDC right now.")
    assert (ApplicationError("wallet_frozen", "x", status=403).status, ApplicationError("rate_limited").status) == (403, 429)
    for cls, code in ((NotFoundError, "payment_not_found"), (ConflictError, "sponsorship_closed"),
                      (UnprocessableError, "idempotency_key_reused")):
        assert cls(code).status == REGISTRY[code].status


def test_a_status_that_disagrees_with_the_registry_is_refused() -> None:
    with pytest.raises(ValueError, match="registered with status 400"):
        ApplicationError("insufficient_funds", "x", status=409)
    with pytest.raises(ValueError, match="registered with status 400"):
        NotFoundError("insufficient_funds")


def test_every_registered_code_is_complete() -> None:
    for code, entry in REGISTRY.items():
        assert entry.code == code
        assert code == code.lower()
        assert " " not in code
        assert 400 <= entry.status <= 599
        assert entry.message.endswith(".")
        assert entry.title


# --- malformed requests (issue 7 item 8): 400 problem+json, never an HTML 500 ---

def _deep_json(depth: int = 1000) -> str:
    return "[" * depth + "]" * depth


def _assert_problem(response: object, code: str) -> None:
    assert response.status_code == 400, response.content  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/problem+json"  # type: ignore[index]
    body = json.loads(response.content)  # type: ignore[attr-defined]
    assert (body["code"], body["status"], body["detail"]) == (code, 400, REGISTRY[code].message)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/faucet"])
def test_deeply_nested_json_to_the_api_is_a_400_problem(client, make_user, path: str) -> None:
    from payments.models import Payment

    client.force_login(make_user())
    response = client.post(path, _deep_json(), content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    _assert_problem(response, "request_too_deep")
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_json_nested_deeper_than_the_limit_is_refused_even_without_recursion_trouble(client, make_user) -> None:
    from numpay.core.parsers import MAX_JSON_DEPTH

    client.force_login(make_user())
    body = {"to": "x", "token": "USDC", "amount": "1", "memo": "m", "extra": json.loads(_deep_json(MAX_JSON_DEPTH))}
    response = client.post("/api/v1/faucet", body, content_type="application/json")
    _assert_problem(response, "request_too_deep")


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_deeply_nested_json_to_allauth_headless_login_is_a_400_problem(client, content_type: str) -> None:
    from django.contrib.sessions.models import Session

    # allauth headless parses the body as JSON whatever the declared type
    response = client.post("/_allauth/app/v1/auth/login", _deep_json(), content_type=content_type)
    _assert_problem(response, "request_too_deep")
    assert Session.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/faucet", "/_allauth/app/v1/auth/login"])
def test_body_over_the_size_limit_is_a_400_problem(client, make_user, settings, path: str) -> None:
    from payments.models import Payment

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    if not path.startswith("/_allauth/"):
        client.force_login(make_user())
    body = json.dumps({"to": "a" * 2_000, "token": "USDC", "amount": "1", "email": "a@example.com", "password": "x"})
    response = client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    _assert_problem(response, "request_too_large")
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_ordinary_bad_json_stays_malformed_request_and_allauth_keeps_its_own_answers(client, make_user) -> None:
    client.force_login(make_user())
    response = client.post("/api/v1/faucet", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == "malformed_request"
    login = client.post("/_allauth/app/v1/auth/login", {"email": "nobody@example.com", "password": "x"},
                        content_type="application/json")
    assert login.status_code == 400
    assert login["Content-Type"] == "application/json"  # allauth's own validation answer, untouched


@pytest.mark.django_db
def test_drf_errors_carry_registered_codes(client) -> None:
    response = client.get("/api/v1/wallet")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert (body["code"], body["title"]) == ("not_authenticated", REGISTRY["not_authenticated"].title)


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["multipart", "form"])
def test_form_bodies_over_the_size_limit_are_a_400_problem_too(client, make_user, settings, encoding: str) -> None:
    from urllib.parse import urlencode

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    client.force_login(make_user())
    fields = {"token": "USDC", "amount": "1" * 2_000}
    if encoding == "multipart":
        response = client.post("/api/v1/faucet", fields)
    else:
        response = client.post("/api/v1/faucet", urlencode(fields), content_type="application/x-www-form-urlencoded")
    _assert_problem(response, "request_too_large")


def test_errors_survive_pickling_with_their_code_status_and_fields() -> None:
    import pickle

    from numpay.core.errors import ChainRequestError, ChainUnavailableError

    for error in (ApplicationError("insufficient_funds", "At most 1 USDC.", extra={"field": "amount"}),
                  NotFoundError("payment_not_found"), ChainUnavailableError(),
                  ChainRequestError("Blockhash not found", rpc_code=-32002, data={"err": "x"})):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert type(copy) is type(error)
        assert (copy.code, copy.status, copy.message, copy.extra, str(copy)) == (
            error.code, error.status, error.message, error.extra, str(error))
    assert pickle.loads(pickle.dumps(ChainRequestError("x", rpc_code=-32002))).rpc_code == -32002  # noqa: S301
