"""REST API v1 of guardian recovery (``/api/v1/recovery/...``): the same flows as the pages.

Passkey steps are two calls: ``..._options`` answers WebAuthn options (JSON form) for the passkey to sign,
the next call carries ``credential`` (``PublicKeyCredential.toJSON()``). The requester of a recovery is not
signed in: they follow their request with the token ``POST /recovery/requests`` returned.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from numpay.core.api import problems

from .. import digests, selectors, services
from ..models import RecoveryRequest
from ..passkeys import request_options

PASSKEY = ("passkey_required", "passkey_assertion_invalid")
OWNER_PASSKEY = (*PASSKEY, "owner_passkey_required")


class StatusSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=RecoveryRequest.Status.choices)
    approvals = serializers.IntegerField(help_text="Live approvals by active guardians.")
    threshold = serializers.IntegerField(help_text="Approvals needed.")
    guardians = serializers.IntegerField(help_text="Active guardians.")
    executes_at = serializers.DateTimeField(allow_null=True, help_text="When the timelock ends (null until the "
                                                                       "threshold is met).")
    expires_at = serializers.DateTimeField()
    sentence = serializers.CharField()


class OptionsSerializer(serializers.Serializer):
    publicKey = serializers.DictField(help_text="WebAuthn options in their JSON form.")  # noqa: N815


class CredentialSerializer(serializers.Serializer):
    credential = serializers.DictField(help_text="PublicKeyCredential.toJSON() of the passkey's answer.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The requester's secret: send it as X-Recovery-Token to follow the request.")


class InvitationCreatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    expires_at = serializers.DateTimeField()


class RulesSerializer(serializers.Serializer):
    threshold = serializers.IntegerField(allow_null=True, help_text="null = a majority of active guardians.")
    timelock_seconds = serializers.IntegerField()
    hold_payments = serializers.BooleanField()


class InvitationInfoSerializer(serializers.Serializer):
    owner = serializers.CharField()
    email = serializers.EmailField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    options = OptionsSerializer()


class ApprovalInfoSerializer(serializers.Serializer):
    account = serializers.CharField()
    status = StatusSerializer()
    options = OptionsSerializer()


def _status(request: RecoveryRequest) -> dict[str, Any]:
    return StatusSerializer(selectors.request_status(request).__dict__).data


def _client_key(request: Request) -> str:
    return request.META.get("REMOTE_ADDR", "")


# --- the owner -------------------------------------------------------------------------------------------
class GuardianSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField(source="guardian_user.email")
    status = serializers.CharField()
    change_effective_at = serializers.DateTimeField(allow_null=True, help_text=(
        "When the pending change takes effect (protected mode: the chain's effective_at, null until the owner's "
        "proposal is written on-chain)."))
    removal_requested_at = serializers.DateTimeField(allow_null=True)
    change_on_chain = serializers.BooleanField(help_text="Protected mode: the change takes effect when "
                                                         "guardians_apply lands on-chain.")
    owner_confirmed_at = serializers.DateTimeField(allow_null=True)
    needs_owner_confirmation = serializers.SerializerMethodField(help_text=(
        "The guardian accepted; the owner must confirm with their passkey (change-options purpose confirm, then "
        "confirm) to write the addition on-chain."))

    cancelling = serializers.SerializerMethodField(help_text=(
        "The owner cancelled this change with their passkey and the cancel is being written on-chain: until it "
        "lands the change stays pending (a refused cancel leaves it pending; chain.error says why)."))

    def get_needs_owner_confirmation(self, guardian: Any) -> bool:
        return (guardian.status == "pending" and guardian.change_on_chain and guardian.owner_confirmed_at is None)

    def get_cancelling(self, guardian: Any) -> bool:
        return self.context.get("cancelling") == str(guardian.id)


class ChainChangeSerializer(serializers.Serializer):
    step = serializers.CharField(help_text="'' (none), propose, apply (proposed: applied when due) or cancel.")
    effective_at = serializers.DateTimeField(allow_null=True, help_text="When the chain lets the proposed change "
                                                                        "be applied.")
    sync = serializers.CharField(help_text="'' (written), pending, in_flight or failed.")
    error = serializers.CharField(help_text="Why the last on-chain write was refused, if it was.")


class RecoveryOverviewView(APIView):
    """The owner's guardians, invitations, rules and the recovery request of their account, if any."""

    class OutputSerializer(serializers.Serializer):
        threshold = serializers.IntegerField(allow_null=True, help_text="null = a majority of active guardians.")
        timelock_seconds = serializers.IntegerField()
        hold_payments = serializers.BooleanField()
        guardians = GuardianSerializer(many=True)
        invitations = serializers.ListField(child=serializers.DictField())
        open_request = StatusSerializer(allow_null=True)
        chain = ChainChangeSerializer(help_text="The on-chain state of the guardian set and its pending change.")

    @extend_schema(operation_id="recovery_overview", responses={200: OutputSerializer, **problems()})
    def get(self, request: Request) -> Response:
        setup = services.recovery_setup(user=request.user)
        open_request = selectors.open_request_of(user=request.user)
        return Response(self.OutputSerializer(context={"cancelling": services.onchain_guardians.cancelling_of(setup)},
                                              instance={
            "threshold": setup.threshold, "timelock_seconds": setup.timelock_seconds,
            "hold_payments": setup.hold_payments, "guardians": list(selectors.guardians_of(user=request.user)),
            "invitations": [{"id": str(i.id), "email": i.email, "expires_at": i.expires_at.isoformat()}
                            for i in selectors.invitations_of(user=request.user)],
            "open_request": selectors.request_status(open_request).__dict__ if open_request else None,
            "chain": {"step": setup.chain_change_step, "effective_at": setup.chain_change_effective_at,
                      "sync": setup.chain_sync, "error": setup.chain_sync_error}}).data)


class OwnerChallengeView(APIView):
    """WebAuthn options for the owner's passkey to approve one change (single use)."""

    class OwnerChallengeInputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["invite", "remove", "settings"])
        subject = serializers.CharField(max_length=254, help_text="invite: the email; remove: the guardian id; "
                                                                  "settings: threshold=N;timelock=S;hold=0|1.")

    @extend_schema(operation_id="recovery_owner_challenge", request=OwnerChallengeInputSerializer,
                   responses={200: OptionsSerializer, **problems("passkey_required", body=True)})
    def post(self, request: Request) -> Response:
        data = self.OwnerChallengeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = data.validated_data["subject"]
        if data.validated_data["action"] == "invite":
            subject = subject.strip().lower()
        return Response(services.owner_change_options(owner=request.user, action=data.validated_data["action"],
                                                      subject=subject))


class GuardianInviteView(APIView):
    """Invite a guardian by email (the owner's passkey over ``invite`` / the email)."""

    class GuardianInviteInputSerializer(CredentialSerializer):
        email = serializers.EmailField()

    @extend_schema(operation_id="recovery_guardian_invite", request=GuardianInviteInputSerializer, responses={
        201: InvitationCreatedSerializer, **problems("guardian_is_owner", "guardian_limit_reached",
                                                 "guardian_already_invited", "wallet_not_found", *OWNER_PASSKEY,
                                                 body=True)})
    def post(self, request: Request) -> Response:
        data = self.GuardianInviteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, _token = services.guardian_invite(owner=request.user, email=data.validated_data["email"],
                                                      credential=data.validated_data["credential"])
        return Response({"id": str(invitation.id), "email": invitation.email,
                         "expires_at": invitation.expires_at.isoformat()}, status=201)


class GuardianRemoveView(APIView):
    """Ask for a guardian's removal (the owner's passkey over ``remove`` / the guardian id); it takes effect
    after the change delay."""

    @extend_schema(operation_id="recovery_guardian_remove", request=CredentialSerializer, responses={
        200: GuardianSerializer, **problems("guardian_not_found", "guardian_change_pending",
                                            "recovery_threshold_invalid", "guardian_change_in_flight",
                                            *OWNER_PASSKEY, body=True)})
    def post(self, request: Request, guardian_id: str) -> Response:
        data = CredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        guardian = services.guardian_remove(owner=request.user, guardian_id=guardian_id,
                                            credential=data.validated_data["credential"])
        return Response(GuardianSerializer(guardian).data)


class OptionalCredentialSerializer(serializers.Serializer):
    credential = serializers.DictField(required=False, help_text=(
        "PublicKeyCredential.toJSON() of the owner's passkey over the change-options challenge (purpose cancel); "
        "needed for a change already approved for the chain (protected mode)."))


class GuardianChangeCancelView(APIView):
    """Cancel a guardian's pending addition or removal: the owner's session, or (a protected wallet's change
    already approved for the chain, where anyone could complete it) the owner's passkey over the
    ``change-options`` challenge of purpose ``cancel``."""

    @extend_schema(operation_id="recovery_guardian_change_cancel", request=OptionalCredentialSerializer, responses={
        200: GuardianSerializer, **problems("guardian_not_found", "guardian_change_not_pending",
                                            "guardian_cancel_passkey_required", "guardian_change_in_flight",
                                            *OWNER_PASSKEY, body=True)})
    def post(self, request: Request, guardian_id: str) -> Response:
        data = OptionalCredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        guardian = services.guardian_change_cancel(owner=request.user, guardian_id=guardian_id,
                                                   credential=data.validated_data.get("credential"))
        return Response(GuardianSerializer(guardian).data)


class GuardianChangeOptionsView(APIView):
    """WebAuthn options for the owner's passkey to approve a guardian change of a protected wallet on-chain:
    ``confirm`` an accepted guardian, ``remove`` one, ``cancel`` a pending change. The challenge is the wallet
    program's approval challenge of the ``guardians_propose`` (or ``guardians_cancel``) of the wanted guardian
    set, at the wallet's nonce (docs/wallet-program.md "12–14 Guardian changes")."""

    class GuardianChangeOptionsInputSerializer(serializers.Serializer):
        purpose = serializers.ChoiceField(choices=["confirm", "remove", "cancel"])

    @extend_schema(operation_id="recovery_guardian_change_options", request=GuardianChangeOptionsInputSerializer,
                   responses={200: OptionsSerializer, **problems(
                       "guardian_not_found", "guardian_confirmation_not_needed", "guardian_change_pending",
                       "guardian_change_not_pending", "guardian_change_in_flight", "passkey_required",
                       "wallet_not_found", body=True)})
    def post(self, request: Request, guardian_id: str) -> Response:
        data = self.GuardianChangeOptionsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.guardian_change_options(owner=request.user, purpose=data.validated_data["purpose"],
                                                         guardian_id=guardian_id))


class GuardianConfirmView(APIView):
    """Confirm an accepted guardian of a protected wallet with the owner's passkey (over the ``change-options``
    challenge of purpose ``confirm``): the addition is proposed on-chain and takes effect after the wallet's
    guardian change delay."""

    @extend_schema(operation_id="recovery_guardian_confirm", request=CredentialSerializer, responses={
        200: GuardianSerializer, **problems("guardian_not_found", "guardian_confirmation_not_needed",
                                            "guardian_change_in_flight", *OWNER_PASSKEY, body=True)})
    def post(self, request: Request, guardian_id: str) -> Response:
        data = CredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        guardian = services.guardian_change_approve(owner=request.user, purpose="confirm", guardian_id=guardian_id,
                                                    credential=data.validated_data["credential"])
        return Response(GuardianSerializer(guardian).data)


class RecoverySettingsView(APIView):
    """Change the owner's rules: threshold (null = majority), timelock (seconds), payment hold."""

    class RecoverySettingsInputSerializer(CredentialSerializer):
        threshold = serializers.IntegerField(allow_null=True, min_value=1, max_value=255)
        timelock_seconds = serializers.IntegerField(min_value=1)
        hold_payments = serializers.BooleanField()

    @extend_schema(operation_id="recovery_settings_update", request=RecoverySettingsInputSerializer, responses={
        200: RulesSerializer, **problems("recovery_threshold_invalid", "recovery_timelock_out_of_range",
                                                 "wallet_not_found", *OWNER_PASSKEY, body=True)})
    def put(self, request: Request) -> Response:
        data = self.RecoverySettingsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        setup = services.recovery_settings_update(owner=request.user, **data.validated_data)
        return Response({"threshold": setup.threshold, "timelock_seconds": setup.timelock_seconds,
                         "hold_payments": setup.hold_payments})


# --- invitations -----------------------------------------------------------------------------------------
class InvitationView(APIView):
    """An invitation (by its token) and the WebAuthn options to accept it with the signed-in user's passkey."""

    @extend_schema(operation_id="recovery_invitation_retrieve", responses={
        200: InvitationInfoSerializer, **problems("guardian_invitation_not_found", "passkey_required")})
    def get(self, request: Request, token: str) -> Response:
        invitation = services.invitation_by_token(token)
        return Response({"owner": str(invitation.owner), "email": invitation.email, "status": invitation.status,
                         "expires_at": invitation.expires_at.isoformat(),
                         "options": services.invitation_accept_options(token=token, user=request.user)})


class InvitationAcceptView(APIView):
    """Accept with the signed-in user's passkey; the guardian counts after the change delay."""

    @extend_schema(operation_id="recovery_invitation_accept", request=CredentialSerializer, responses={
        201: GuardianSerializer, **problems("guardian_invitation_not_found", "guardian_invitation_expired",
                                            "guardian_invitation_used", "guardian_invitation_wrong_account",
                                            "guardian_is_owner", "wallet_not_found", *PASSKEY, body=True)})
    def post(self, request: Request, token: str) -> Response:
        data = CredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        guardian = services.guardian_invitation_accept(token=token, user=request.user,
                                                       credential=data.validated_data["credential"])
        return Response(GuardianSerializer(guardian).data, status=201)


# --- the requester (not signed in) -----------------------------------------------------------------------
class RequestStartView(APIView):
    """Start a recovery ("I lost access"): a code goes to the account's email or phone. Always 202 with a
    token, whether or not the account exists."""

    permission_classes = [AllowAny]

    class RequestStartInputSerializer(serializers.Serializer):
        identifier = serializers.CharField(max_length=254, help_text="The account's email address or phone number.")

    @extend_schema(operation_id="recovery_request_start", request=RequestStartInputSerializer, responses={
        202: TokenSerializer, **problems("recovery_identifier_required", "rate_limited", body=True)})
    def post(self, request: Request) -> Response:
        data = self.RequestStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.recovery_start(identifier=data.validated_data["identifier"], client_key=_client_key(request))
        return Response({"token": token}, status=202)


class RequestVerifyView(APIView):
    """Check the code; answers the creation options of the new passkey."""

    permission_classes = [AllowAny]

    class RequestVerifyInputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=100)
        code = serializers.CharField(max_length=12)

    @extend_schema(operation_id="recovery_request_verify", request=RequestVerifyInputSerializer, responses={
        200: OptionsSerializer, **problems("recovery_code_invalid", "recovery_code_expired", "recovery_not_verifying",
                                           body=True)})
    def post(self, request: Request) -> Response:
        data = self.RequestVerifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.recovery_code_verify(**data.validated_data))


class RequestPasskeyView(APIView):
    """Register the new passkey (held pending); the guardians and the owner are told."""

    permission_classes = [AllowAny]

    class RequestPasskeyInputSerializer(CredentialSerializer):
        token = serializers.CharField(max_length=100)

    @extend_schema(operation_id="recovery_request_passkey", request=RequestPasskeyInputSerializer, responses={
        200: StatusSerializer, **problems("recovery_request_not_found", "recovery_not_verifying",
                                          "passkey_registration_invalid", body=True)})
    def post(self, request: Request) -> Response:
        data = self.RequestPasskeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_status(services.recovery_passkey_register(**data.validated_data)))


class RequestStatusView(APIView):
    """The requester's view of their request (``X-Recovery-Token`` header)."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="recovery_request_status", responses={
        200: StatusSerializer, **problems("recovery_request_not_found")})
    def get(self, request: Request) -> Response:
        return Response(_status(services.request_by_token(request.headers.get("X-Recovery-Token", ""))))


# --- guardians -------------------------------------------------------------------------------------------
class ApprovalView(APIView):
    """A request as its guardian sees it, with the WebAuthn options to approve it (signed-in guardian)."""

    @extend_schema(operation_id="recovery_approval_retrieve", responses={
        200: ApprovalInfoSerializer, **problems("recovery_request_not_found", "recovery_not_guardian",
                                                 "passkey_required")})
    def get(self, request: Request, request_id: str) -> Response:
        recovery, _guardian = services.guardian_request(request_id=request_id, user=request.user,
                                                        refuse_while_starting=False)
        return Response({"account": str(recovery.user), "status": _status(recovery), "options": request_options(
            user=request.user, challenge=digests.approval_challenge(recovery))})


class ApproveView(APIView):
    """Approve with the passkey you are guardian with."""

    @extend_schema(operation_id="recovery_approve", request=CredentialSerializer, responses={
        201: StatusSerializer, **problems("recovery_request_not_found", "recovery_not_collecting",
                                          "recovery_not_guardian", "recovery_already_approved", "wallet_not_found",
                                          *PASSKEY, body=True)})
    def post(self, request: Request, request_id: str) -> Response:
        data = CredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.recovery_approve(request_id=request_id, user=request.user,
                                             credential=data.validated_data["credential"])
        return Response(_status(approval.request), status=201)


class WithdrawCredentialSerializer(serializers.Serializer):
    credential = serializers.DictField(required=False, help_text=(
        "PublicKeyCredential.toJSON() of your passkey's answer to withdraw-options; needed once the recovery is "
        "pending on the wallet and counts your approval there."))


class WithdrawOptionsSerializer(serializers.Serializer):
    options = OptionsSerializer(allow_null=True, help_text=(
        "WebAuthn options to withdraw on the wallet with your passkey, or null: your session suffices."))


class WithdrawOptionsView(APIView):
    """What your passkey must sign to withdraw your approval on the wallet too (null: nothing on-chain)."""

    @extend_schema(operation_id="recovery_withdraw_options", responses={
        200: WithdrawOptionsSerializer, **problems("recovery_request_not_found", "recovery_not_guardian",
                                                   "recovery_chain_busy", "passkey_required", "chain_unavailable")})
    def get(self, request: Request, request_id: str) -> Response:
        return Response({"options": services.recovery_withdraw_options(request_id=request_id, user=request.user)})


class ChainApproveCredentialSerializer(serializers.Serializer):
    credential = serializers.DictField(required=False, help_text=(
        "PublicKeyCredential.toJSON() of your passkey's answer to approve-options (the wallet program's "
        "recovery_approve challenge at the wallet's nonce then)."))


class ChainApproveOptionsSerializer(serializers.Serializer):
    options = OptionsSerializer(allow_null=True, help_text=(
        "WebAuthn options to approve on the wallet with your passkey, or null: the wallet needs nothing from you."))


class ChainApproveOptionsView(APIView):
    """What your passkey must sign to add your approval on the wallet, when the start could not carry it
    (null: the wallet needs nothing from you)."""

    @extend_schema(operation_id="recovery_approve_options", responses={
        200: ChainApproveOptionsSerializer, **problems("recovery_request_not_found", "recovery_not_guardian",
                                                   "recovery_chain_busy", "passkey_required", "chain_unavailable")})
    def get(self, request: Request, request_id: str) -> Response:
        return Response({"options": services.recovery_approve_options(request_id=request_id, user=request.user)})


class ChainApproveView(APIView):
    """Approve on the wallet with your passkey (your answer to approve-options); the sweep sends it."""

    @extend_schema(operation_id="recovery_chain_approve", request=ChainApproveCredentialSerializer, responses={
        200: StatusSerializer, **problems("recovery_request_not_found", "recovery_not_collecting",
                                          "recovery_approval_not_found", "recovery_not_guardian",
                                          "guardian_passkey_required", "recovery_chain_busy", "wallet_not_found",
                                          "chain_unavailable", *PASSKEY, body=True)})
    def post(self, request: Request, request_id: str) -> Response:
        data = ChainApproveCredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.recovery_chain_approve(request_id=request_id, user=request.user,
                                                   credential=data.validated_data.get("credential"))
        return Response(_status(approval.request))


class WithdrawView(APIView):
    """Withdraw your approval (until execution); with your passkey once the wallet counts it."""

    @extend_schema(operation_id="recovery_withdraw", request=WithdrawCredentialSerializer, responses={
        200: StatusSerializer, **problems("recovery_request_not_found", "recovery_not_collecting",
                                          "recovery_approval_not_found", "recovery_not_guardian",
                                          "guardian_passkey_required", "recovery_chain_busy", "wallet_not_found",
                                          "chain_unavailable", *PASSKEY, body=True)})
    def post(self, request: Request, request_id: str) -> Response:
        data = WithdrawCredentialSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.recovery_approval_withdraw(request_id=request_id, user=request.user,
                                                       credential=data.validated_data.get("credential"))
        return Response(_status(approval.request))


# --- the owner cancels -----------------------------------------------------------------------------------
class CancelOptionsView(APIView):
    """WebAuthn options for the owner's passkey to cancel (no session needed)."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="recovery_cancel_options", responses={
        200: OptionsSerializer, **problems("recovery_request_not_found", "passkey_required", "chain_unavailable")})
    def get(self, request: Request, request_id: str) -> Response:
        return Response(services.recovery_cancel_options(request_id=request_id))


class CancelView(APIView):
    """Cancel: the owner's session, or the owner's passkey (``credential``); ``link`` is the cancel link's
    signed part, optional (single use)."""

    permission_classes = [AllowAny]

    class CancelInputSerializer(serializers.Serializer):
        credential = serializers.DictField(required=False)
        link = serializers.CharField(required=False, max_length=500)

    @extend_schema(operation_id="recovery_cancel", request=CancelInputSerializer, responses={
        200: StatusSerializer, **problems("recovery_request_not_found", "recovery_not_cancellable",
                                          "recovery_cancel_link_invalid", "wallet_not_found", "chain_unavailable",
                                          *OWNER_PASSKEY,
                                          body=True)})
    def post(self, request: Request, request_id: str) -> Response:
        data = self.CancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        recovery = services.recovery_cancel(request_id=request_id, session_user=user,
                                            credential=data.validated_data.get("credential"),
                                            link=data.validated_data.get("link"))
        return Response(_status(recovery))
