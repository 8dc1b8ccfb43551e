"""REST API v1 for the passkey step-up of a payment (:mod:`payments.approvals`):
``POST /api/v1/payments/{id}/approval-options`` and ``POST /api/v1/payments/{id}/approve``; and for adding a
further passkey as an owner of a protected wallet (:mod:`payments.passkey_owners`):
``POST /api/v1/wallet/passkeys/{id}/owner-options`` and ``POST /api/v1/wallet/passkeys/{id}/owner``, and for giving an
owner passkey the first one's limits (:mod:`payments.passkey_limits`): ``POST .../{id}/limits-options`` and
``POST .../{id}/limits``; both followed at ``GET /api/v1/wallet/passkey-changes/{change id}``; and for taking
an owner passkey off it (:mod:`payments.passkey_removals`): ``POST /api/v1/wallet/passkeys/{id}/removal-options``,
``POST /api/v1/wallet/passkeys/{id}/removal`` and ``GET /api/v1/wallet/passkey-removals/{removal id}``.

The options are issued by a POST: each call creates a single-use approval (STYLE.md: a GET never writes).
"""

from __future__ import annotations

from django.templatetags.static import static
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from numpay.core.api import problems

from ..approvals import approval_options, approval_submit
from ..passkey_limits import change_status, passkey_change_get, passkey_limits_options, passkey_limits_submit
from ..passkey_owners import passkey_owner_add, passkey_owner_options
from ..passkey_removals import passkey_removal_get, passkey_removal_options, passkey_removal_submit
from .views import PaymentSerializer, payment_data

APPROVAL_STATE_CODES = ("payment_not_found", "payment_not_approvable", "payment_expired", "approval_not_needed")


class ProgressSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Distinct passkeys that approved this payment so far.")
    required = serializers.IntegerField(help_text="Distinct passkeys the spending policy asks for (1 or 2).")


class ApprovalOptionsSerializer(serializers.Serializer):
    """A single-use approval and its WebAuthn request options."""

    approval_id = serializers.UUIDField()
    expires_at = serializers.DateTimeField(help_text="The challenge is refused after this instant (UTC).")
    approvals = ProgressSerializer()
    public_key = serializers.DictField(help_text=(
        "PublicKeyCredentialRequestOptions (JSON form: base64url challenge and credential ids; rpId, "
        "userVerification \"required\", allowCredentials = your passkeys that have not approved this payment). "
        "Pass to navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(...)}) "
        "or the platform's passkey API. The challenge is SHA-256 over exactly what is approved (wallet, "
        "recipient, mint, amount, network fee, payment, nonce, expiry)."))


    secure_payment_confirmation = serializers.DictField(allow_null=True, help_text=(
        "Where the browser supports Secure Payment Confirmation: what its payment sheet shows and signs "
        "(payeeName, total {currency, value}, instrument {displayName, icon URL path}). Pass them with public_key's "
        "challenge, rpId, timeout and allowCredentials ids as the \"secure-payment-confirmation\" method's data of "
        "a PaymentRequest; the approve endpoint then checks the payment.get assertion against exactly these. "
        "null: use navigator.credentials.get (the token has no ISO 4217 equivalent)."))


class ApprovalResultSerializer(serializers.Serializer):
    payment = PaymentSerializer()
    approvals = ProgressSerializer()


class PaymentApprovalOptionsView(APIView):
    """Start approving a payment that waits for your passkey (``awaiting_approval``): a fresh challenge bound to
    this payment, usable once, for a few minutes."""

    @extend_schema(operation_id="payments_approval_options", request=None, responses={
        201: ApprovalOptionsSerializer, **problems(*APPROVAL_STATE_CODES, "passkeys_insufficient",
                                                   "wallet_protection_pending", "chain_unavailable",
                                                   "chain_request_failed")})
    def post(self, request: Request, payment_id: str) -> Response:
        options = approval_options(user=request.user, payment_id=payment_id)
        return Response(ApprovalOptionsSerializer({
            "approval_id": options.approval.id, "expires_at": options.approval.expires_at,
            "approvals": {"received": options.progress.received, "required": options.progress.required},
            "public_key": options.public_key, "secure_payment_confirmation": _with_icon_url(options.secure_payment),
        }).data, status=201)


def _with_icon_url(details: dict | None) -> dict | None:
    if details is None:
        return None
    return {**details, "instrument": {**details["instrument"], "icon": static(details["instrument"]["icon"])}}


class PaymentApproveView(APIView):
    """Approve a payment with your passkey's assertion over the challenge of ``approval-options``. When the
    spending policy's number of distinct passkeys have approved, the payment is signed and sent (its status
    becomes ``approved``); with "1 of 2" it keeps waiting for a second passkey."""

    class ApproveInputSerializer(serializers.Serializer):
        credential = serializers.DictField(help_text=(
            "PublicKeyCredential.toJSON() of the assertion: id, rawId, type, response.{clientDataJSON, "
            "authenticatorData, signature, userHandle} (base64url)."))

    @extend_schema(
        operation_id="payments_approve", request=ApproveInputSerializer,
        examples=[OpenApiExample("assertion", request_only=True, value={"credential": {
            "id": "<base64url>", "rawId": "<base64url>", "type": "public-key", "response": {
                "clientDataJSON": "<base64url>", "authenticatorData": "<base64url>", "signature": "<base64url>",
                "userHandle": "<base64url>"}, "clientExtensionResults": {}}})],
        responses={200: ApprovalResultSerializer, **problems(
            *APPROVAL_STATE_CODES, "passkey_assertion_invalid", "approval_challenge_unknown", "approval_wrong_payment",
            "approval_challenge_used", "approval_challenge_expired", "passkey_unknown", "passkey_already_approved",
            "passkey_sign_count_regressed", "approval_outdated", "transaction_too_large", "transaction_not_allowed",
            "fee_payer_cap_exceeded",
            "sponsorship_budget_exceeded", "chain_unavailable", "chain_request_failed", body=True)})
    def post(self, request: Request, payment_id: str) -> Response:
        data = self.ApproveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = approval_submit(user=request.user, payment_id=payment_id, credential=data.validated_data["credential"])
        return Response(ApprovalResultSerializer({
            "payment": payment_data(result.payment, user=request.user),
            "approvals": {"received": result.progress.received, "required": result.progress.required}}).data)


class OwnerOptionsSerializer(serializers.Serializer):
    nonce = serializers.IntegerField(help_text="The wallet config's nonce in the challenge; send it back.")
    expires_at = serializers.IntegerField(help_text="UNIX seconds; part of the challenge; send it back.")
    public_key = serializers.DictField(help_text="PublicKeyCredentialRequestOptions (JSON form) for one of the "
                                                 "passkeys that already protect the wallet.")


class MultiOptionsSerializer(OwnerOptionsSerializer):
    approvals = serializers.ListField(child=serializers.DictField(), help_text=(
        "PublicKeyCredentialRequestOptions (JSON form) of every approval the change needs, in order "
        "(\"Approve 1 of N\"): challenge i is at nonce + i (the wallet program bumps its nonce per approved action). "
        "The first is public_key. Approve each with the same owner passkey and send them all back together."))


class OwnerAdditionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(help_text="signed, submitted (in flight: a part of the change is on its way or "
                                             "held until the one before it landed), confirmed (every part landed), "
                                             "failed or expired (see error_message).")
    signature = serializers.CharField(help_text="The first transaction's signature.")
    error_message = serializers.CharField(help_text="Why it did not land, in plain words (empty otherwise).")
    parts = serializers.IntegerField(help_text="Transactions the change takes (more than one when its approved "
                                               "actions do not fit in one).")
    landed = serializers.IntegerField(help_text="How many of them landed.")
    status_url = serializers.CharField(help_text="GET it for the current status.")


def _change_data(row) -> dict:  # noqa: ANN001
    status = change_status(row)
    return OwnerAdditionSerializer({
        "id": status.id, "status": status.status, "signature": status.signature,
        "error_message": status.error_message, "parts": status.parts, "landed": status.landed,
        "status_url": reverse("api-wallet-passkey-change-status", args=[row.id])}).data


class MultiApprovalInputSerializer(serializers.Serializer):
    credentials = serializers.ListField(child=serializers.DictField(), required=False, min_length=1, max_length=16,
                                        help_text="PublicKeyCredential.toJSON() of each assertion, in the order of "
                                                  "the options' approvals (all by the same owner passkey).")
    credential = serializers.DictField(required=False, help_text="One assertion: the same as credentials of one.")
    nonce = serializers.IntegerField(min_value=0)
    expires_at = serializers.IntegerField(min_value=0)

    def validate(self, attrs: dict) -> dict:
        credentials = attrs.pop("credentials", None)
        single = attrs.pop("credential", None)
        if (credentials is None) == (single is None):
            raise serializers.ValidationError("Send credentials (or a single credential).")
        attrs["credentials"] = credentials if credentials is not None else [single]
        return attrs


class PasskeyOwnerOptionsView(APIView):
    """Start adding one of your passkeys as an owner of your protected wallet: a passkey that already protects it
    approves (the wallet program checks the approval on-chain)."""

    @extend_schema(operation_id="wallet_passkey_owner_options", request=None, responses={
        201: MultiOptionsSerializer, **problems("passkey_not_found", "wallet_not_protected", "passkey_already_owner",
                                                "passkey_removed_from_wallet", "wallet_change_pending",
                                                "wallet_not_found", "chain_unavailable", "chain_request_failed")})
    def post(self, request: Request, authenticator_id: int) -> Response:
        options = passkey_owner_options(user=request.user, authenticator_id=authenticator_id)
        return Response(MultiOptionsSerializer({"nonce": options.nonce, "expires_at": options.expires_at,
                                                "public_key": options.public_key,
                                                "approvals": options.approvals}).data, status=201)


class PasskeyOwnerAddView(APIView):
    """Add the passkey as an owner, with the first passkey's limits (so it can approve payments on its own), with
    an owner passkey's assertions over the options' challenges (202: submitted; poll ``status_url``)."""

    @extend_schema(operation_id="wallet_passkey_owner_add", request=MultiApprovalInputSerializer, responses={
        202: OwnerAdditionSerializer, **problems(
            "passkey_not_found", "wallet_not_protected", "passkey_already_owner", "passkey_removed_from_wallet",
            "wallet_change_pending", "wallet_not_found", "approval_challenge_expired", "approval_outdated",
            "passkey_assertion_invalid", "passkey_unknown", "passkey_sign_count_regressed", "transaction_not_allowed",
            "fee_payer_cap_exceeded", "sponsorship_budget_exceeded", "chain_unavailable", "chain_request_failed",
            body=True)})
    def post(self, request: Request, authenticator_id: int) -> Response:
        data = MultiApprovalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        addition = passkey_owner_add(user=request.user, authenticator_id=authenticator_id, **data.validated_data)
        return Response(_change_data(addition), status=202)


LIMITS_STATE_CODES = ("passkey_not_found", "wallet_not_protected", "wallet_not_found", "wallet_change_pending",
                      "passkey_not_wallet_owner", "passkey_limits_in_place")


class PasskeyLimitsOptionsView(APIView):
    """Start "Let this passkey approve payments on its own": an owner passkey without limits on-chain (made an owner
    before owners got them) gets the first passkey's limits, one ``set_limits`` per mint, each approved by an owner
    passkey (``approvals``: "Approve 1 of N")."""

    @extend_schema(operation_id="wallet_passkey_limits_options", request=None, responses={
        201: MultiOptionsSerializer, **problems(*LIMITS_STATE_CODES, "chain_unavailable", "chain_request_failed")})
    def post(self, request: Request, authenticator_id: int) -> Response:
        options = passkey_limits_options(user=request.user, authenticator_id=authenticator_id)
        return Response(MultiOptionsSerializer({"nonce": options.nonce, "expires_at": options.expires_at,
                                                "public_key": options.approvals[0],
                                                "approvals": options.approvals}).data, status=201)


class PasskeyLimitsView(APIView):
    """Write the limits with an owner passkey's assertions over the options' challenges (202: submitted; poll
    ``status_url``)."""

    @extend_schema(operation_id="wallet_passkey_limits", request=MultiApprovalInputSerializer, responses={
        202: OwnerAdditionSerializer, **problems(
            *LIMITS_STATE_CODES, "approval_challenge_expired", "approval_outdated", "passkey_assertion_invalid",
            "passkey_unknown", "passkey_sign_count_regressed", "transaction_not_allowed", "fee_payer_cap_exceeded",
            "sponsorship_budget_exceeded", "chain_unavailable", "chain_request_failed", body=True)})
    def post(self, request: Request, authenticator_id: int) -> Response:
        data = MultiApprovalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = passkey_limits_submit(user=request.user, authenticator_id=authenticator_id, **data.validated_data)
        return Response(_change_data(change), status=202)


class PasskeyChangeStatusView(APIView):
    """Where a passkey's addition as an owner, or its limits, is: in flight, done, or failed (with the reason)."""

    @extend_schema(operation_id="wallet_passkey_change_status", responses={
        200: OwnerAdditionSerializer, **problems("passkey_change_not_found")})
    def get(self, request: Request, change_id: str) -> Response:
        return Response(_change_data(passkey_change_get(user=request.user, change_id=change_id)))


REMOVAL_STATE_CODES = ("passkey_not_found", "wallet_not_protected", "wallet_not_found", "wallet_change_pending",
                       "passkey_not_wallet_owner", "passkey_only_wallet_owner")


class PasskeyRemovalSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(help_text="signed, submitted (in flight), confirmed (the passkey no longer owns "
                                             "the wallet: it can now be removed from the account), failed or "
                                             "expired (nothing changed on-chain; see error_message).")
    signature = serializers.CharField()
    error_message = serializers.CharField(help_text="Why it did not land, in plain words (empty otherwise).")
    status_url = serializers.CharField(help_text="GET it for the current status.")


def _removal_data(removal) -> dict:  # noqa: ANN001
    return PasskeyRemovalSerializer({
        "id": removal.id, "status": removal.status, "signature": removal.signature,
        "error_message": removal.error_message,
        "status_url": reverse("api-wallet-passkey-removal-status", args=[removal.id])}).data


class PasskeyRemovalOptionsView(APIView):
    """Start taking one of your passkeys off your protected wallet (for a lost device: approve with another owner
    passkey; the passkey itself may approve too). Refused for the only owner passkey
    (``passkey_only_wallet_owner``: recover the wallet through your guardians when its device is lost)."""

    @extend_schema(operation_id="wallet_passkey_removal_options", request=None, responses={
        201: OwnerOptionsSerializer, **problems(*REMOVAL_STATE_CODES, "chain_unavailable", "chain_request_failed")})
    def post(self, request: Request, authenticator_id: int) -> Response:
        options = passkey_removal_options(user=request.user, authenticator_id=authenticator_id)
        return Response(OwnerOptionsSerializer({"nonce": options.nonce, "expires_at": options.expires_at,
                                                "public_key": options.public_key}).data, status=201)


class PasskeyRemovalView(APIView):
    """Take the passkey off your wallet with an owner passkey's assertion over the options' challenge (202:
    submitted; poll ``status_url``). Once ``confirmed``, delete the passkey from your account as usual."""

    class RemovalInputSerializer(serializers.Serializer):
        credential = serializers.DictField(help_text="PublicKeyCredential.toJSON() of the assertion.")
        nonce = serializers.IntegerField(min_value=0)
        expires_at = serializers.IntegerField(min_value=0)

    @extend_schema(operation_id="wallet_passkey_removal", request=RemovalInputSerializer, responses={
        202: PasskeyRemovalSerializer, **problems(
            *REMOVAL_STATE_CODES, "approval_challenge_expired", "approval_outdated", "passkey_assertion_invalid",
            "passkey_unknown", "passkey_sign_count_regressed", "transaction_not_allowed", "fee_payer_cap_exceeded",
            "sponsorship_budget_exceeded", "chain_unavailable", "chain_request_failed", body=True)})
    def post(self, request: Request, authenticator_id: int) -> Response:
        data = self.RemovalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        removal = passkey_removal_submit(user=request.user, authenticator_id=authenticator_id, **data.validated_data)
        return Response(_removal_data(removal), status=202)


class PasskeyRemovalStatusView(APIView):
    """Where a passkey's removal from your wallet is: in flight, done, or failed (with the reason)."""

    @extend_schema(operation_id="wallet_passkey_removal_status", responses={
        200: PasskeyRemovalSerializer, **problems("passkey_removal_not_found")})
    def get(self, request: Request, removal_id: str) -> Response:
        return Response(_removal_data(passkey_removal_get(user=request.user, removal_id=removal_id)))
