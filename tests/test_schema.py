"""The OpenAPI schema documents what the API does (issue 7 item 8): paginated lists, errors as
``application/problem+json`` with their registered codes per status, 401 and 429 everywhere they happen,
and the 400s that schema-valid requests can get."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from numpay.core.errors import REGISTRY


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for ops in schema["paths"].values() for op in ops.values()}


def _codes(operation: dict[str, Any], status: int) -> list[str]:
    schema = operation["responses"][str(status)]["content"]["application/problem+json"]["schema"]
    return schema["properties"]["code"]["enum"]


def test_every_error_response_is_problem_json_with_codes_registered_for_its_status(schema) -> None:
    operations = _operations(schema)
    assert {"wallet_retrieve", "faucet_create", "payments_list", "payments_create", "payments_retrieve"} <= set(operations)
    for operation_id, operation in operations.items():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            assert set(response["content"]) == {"application/problem+json"}, (operation_id, status)
            for code in _codes(operation, int(status)):
                assert REGISTRY[code].status == int(status), (operation_id, status, code)


def test_every_operation_documents_throttling_and_authentication(schema) -> None:
    for operation_id, operation in _operations(schema).items():
        assert "throttled" in _codes(operation, 429), operation_id
        assert set(_codes(operation, 401)) == {"not_authenticated", "authentication_failed"}, operation_id


def test_operations_with_a_body_document_malformed_bodies(schema) -> None:
    operations = _operations(schema)
    for operation_id in ("faucet_create", "payments_create"):
        assert {"malformed_request", "request_too_deep", "request_too_large", "invalid_request"} <= set(
            _codes(operations[operation_id], 400)), operation_id
        assert _codes(operations[operation_id], 415) == ["unsupported_media_type"]


def test_payment_list_is_documented_as_a_cursor_page(schema) -> None:
    response = _operations(schema)["payments_list"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"next", "previous", "results"}
    assert page["properties"]["results"] == {"type": "array", "items": {"$ref": "#/components/schemas/Payment"}}


def test_payment_create_documents_the_400s_of_schema_valid_requests(schema) -> None:
    operation = _operations(schema)["payments_create"]
    assert {"idempotency_key_required", "invalid_idempotency_key", "unknown_token", "invalid_recipient",
            "insufficient_funds"} <= set(_codes(operation, 400))
    assert _codes(operation, 422) == ["idempotency_key_reused"]
    assert "sponsorship_budget_exceeded" in _codes(operation, 429)
    key = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert (key["in"], key["required"], key["schema"]) == ("header", True,
                                                           {"type": "string", "minLength": 1, "maxLength": 255})


@pytest.mark.django_db
def test_what_the_api_answers_to_schema_valid_requests_is_documented(client, make_user, schema) -> None:
    operations = _operations(schema)
    client.force_login(make_user())
    answers = {
        ("payments_create", "empty Idempotency-Key"): client.post(
            "/api/v1/payments", {"to": "bob@example.com", "token": "USDC", "amount": "1"},
            content_type="application/json", HTTP_IDEMPOTENCY_KEY=""),
        ("payments_create", "unknown token"): client.post(
            "/api/v1/payments", {"to": "bob@example.com", "token": "XYZ", "amount": "1"},
            content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())),
        ("faucet_create", "unknown token"): client.post(
            "/api/v1/faucet", {"token": "XYZ", "amount": "1"}, content_type="application/json"),
        ("payments_retrieve", "unknown id"): client.get(f"/api/v1/payments/{uuid.uuid4()}"),
    }
    seen = {}
    for (operation_id, case), response in answers.items():
        code = response.json()["code"]
        seen[(operation_id, case)] = (response.status_code, code)
        assert code in _codes(operations[operation_id], response.status_code), (operation_id, case)
    assert seen == {("payments_create", "empty Idempotency-Key"): (400, "idempotency_key_required"),
                    ("payments_create", "unknown token"): (400, "unknown_token"),
                    ("faucet_create", "unknown token"): (400, "unknown_token"),
                    ("payments_retrieve", "unknown id"): (404, "payment_not_found")}
