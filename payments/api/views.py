"""REST API v1 for payments: ``GET/POST /api/v1/payments``, ``GET /api/v1/payments/{id}``,
``POST /api/v1/payments/{id}/reclaim``, ``POST /api/v1/payments/{id}/cancel``, ``GET /api/v1/activity``; a user's
own spending limits: ``GET/PUT /api/v1/wallet/limits``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from numpay.core.api import CursorPagination, problems
from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount
from wallets.selectors import tokens_active
from wallets.services import token_get, wallet_for_user

from ..models import Payment
from ..policy_services import limits_overview, own_limits_parse, own_limits_set
from ..requests import PaymentRequest
from ..selectors import ACTIVITY_DIRECTIONS, payment_get_visible, payments_visible_to, wallet_activity_page
from ..services import payment_cancel, payment_create, payment_reclaim

IDEMPOTENCY_HEADER = OpenApiParameter(
    name="Idempotency-Key", location=OpenApiParameter.HEADER, required=True,
    type={"type": "string", "minLength": 1, "maxLength": 255},
    description="A unique key per intended payment (e.g. a UUID). A replay returns the first payment; the same "
                "key with a different body is refused with 422 idempotency_key_reused.")


class PaymentErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class PolicyCheckSerializer(serializers.Serializer):
    rule = serializers.ChoiceField(choices=["per_transaction_cap", "daily_cap", "weekly_cap", "monthly_cap",
                                            "max_payments_per_hour", "allowlist", "passkey_above",
                                            "two_passkeys_above"])
    policy = serializers.CharField(help_text="Which policy set the rule, e.g. \"default: Standard\", \"own limits\".")
    limit = serializers.CharField(help_text="Base units (a count for max_payments_per_hour).")
    used = serializers.CharField(help_text="Base units reserved + committed in the window (rolling caps), the "
                                           "payment's amount (per-transaction cap, passkey thresholds), a count "
                                           "(velocity), 1/0 (allowlist).")
    outcome = serializers.ChoiceField(choices=["pass", "refused", "approval_required"])


class PolicyDecisionSerializer(serializers.Serializer):
    """The spending-policy decision stored when the payment was created."""

    outcome = serializers.ChoiceField(choices=["pass", "approval_required"])
    approvals_required = serializers.IntegerField(
        help_text="How many distinct passkeys must approve before the payment is signed (0, 1 or 2).")
    checks = PolicyCheckSerializer(many=True)


class PaymentSerializer(serializers.Serializer):
    """A payment as clients see it. ``amount`` is in token units (decimal string), ``amount_base_units``
    in base units (lamports / token base units)."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    direction = serializers.ChoiceField(choices=["sent", "received"])
    to = serializers.CharField(help_text="The recipient as entered: an email or a Solana address.")
    to_address = serializers.CharField()
    token = serializers.CharField()
    amount = serializers.CharField()
    amount_base_units = serializers.CharField()
    decimals = serializers.IntegerField()
    memo = serializers.CharField(allow_blank=True)
    network_fee = serializers.CharField(
        help_text="What the sender pays on top of `amount`, in token units (decimal string): \"0\" unless the payment "
                  "opens a token account for an address outside Numpay (an operator-set fee). Solana's network fees "
                  "in SOL are always paid by Numpay's relayer.")
    signature = serializers.CharField(allow_blank=True, help_text="The transaction signature (base58).")
    error = PaymentErrorSerializer(allow_null=True)
    policy = PolicyDecisionSerializer(allow_null=True, help_text="Shown to the sender only.")
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="While awaiting approval: when the payment expires (its reservation released).")
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    slot = serializers.IntegerField(allow_null=True, help_text="The slot its transaction landed in (null until then).")
    block_time = serializers.DateTimeField(
        allow_null=True, help_text="The chain's time of that slot's block, UTC (null until it lands, or when the "
                                   "node has none): the time the activity shows.")


def payment_data(payment: Payment, *, user: object) -> dict[str, object]:
    """The API representation of ``payment`` for ``user`` (sender or recipient)."""
    is_sender = payment.sender_id == getattr(user, "pk", None)
    return {
        "id": payment.id, "status": payment.status,
        "direction": "sent" if is_sender and payment.reclaim_of_id is None else "received",
        "policy": payment.policy_decision if is_sender else None,
        "expires_at": payment.expires_at if is_sender else None,
        "to": payment.recipient_input, "to_address": payment.recipient_address, "token": payment.token.symbol,
        "amount": format_amount(payment.amount, decimals=payment.token.decimals),
        "amount_base_units": str(payment.amount), "decimals": payment.token.decimals, "memo": payment.memo,
        "network_fee": format_amount(payment.network_fee, decimals=payment.token.decimals), "signature": payment.signature,
        "error": {"code": payment.error_code, "message": payment.error_message} if payment.error_code else None,
        "created_at": payment.created_at, "submitted_at": payment.submitted_at, "confirmed_at": payment.confirmed_at,
        "slot": payment.slot, "block_time": payment.block_time,
    }


class PaymentListCreateView(APIView):
    """List your payments (sent and received), or send one."""

    pagination_class = CursorPagination  # also tells the schema generator the list is a cursor page

    class PaymentCreateInputSerializer(serializers.Serializer):
        to = serializers.CharField(max_length=254, help_text="A Numpay user's email or any Solana address.")
        token = serializers.CharField(max_length=16, help_text="\"SOL\" or \"USDC\".")
        amount = serializers.CharField(max_length=40, help_text="Decimal string in token units, e.g. \"12.50\".")
        memo = serializers.CharField(max_length=400, required=False, allow_blank=True, default="")

    @extend_schema(operation_id="payments_list", responses={200: PaymentSerializer(many=True),
                                                            **problems("not_found")})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(payments_visible_to(user=request.user), request, view=self)
        return paginator.get_paginated_response(
            PaymentSerializer([payment_data(p, user=request.user) for p in page], many=True).data)

    @extend_schema(
        operation_id="payments_create", parameters=[IDEMPOTENCY_HEADER], request=PaymentCreateInputSerializer,
        examples=[OpenApiExample("USDC to a user", value={"to": "bob@example.com", "token": "USDC", "amount": "12.50",
                                                          "memo": "lunch"}, request_only=True)],
        responses={
            201: PaymentSerializer,
            **problems("invalid_request", "idempotency_key_required", "invalid_idempotency_key", "recipient_required",
                       "invalid_address", "invalid_recipient", "recipient_account_missing",
                       "recipient_is_sender",
                       "unknown_token", "invalid_amount", "amount_not_positive", "too_many_decimals",
                       "amount_too_large", "memo_too_long", "invalid_memo", "insufficient_funds",
                       "amount_below_rent_minimum", "would_leave_dust", "transaction_not_allowed",
                       "fee_payer_cap_exceeded", "wallet_not_found", "wallet_frozen", "wallet_unclaimed",
                       "idempotency_key_reused", "limit_exceeded", "velocity_exceeded", "recipient_not_allowed",
                       "sponsorship_budget_exceeded", "chain_unavailable", "chain_request_failed", body=True),
        })
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise ApplicationError("idempotency_key_required", "Send an Idempotency-Key header with every payment.")
        data = self.PaymentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment, created = payment_create(user=request.user, request=PaymentRequest(**data.validated_data),
                                          idempotency_key=key)
        response = Response(PaymentSerializer(payment_data(payment, user=request.user)).data, status=201)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


class PaymentDetailView(APIView):
    """One of your payments (sent or received); anyone else's is 404."""

    @extend_schema(operation_id="payments_retrieve", responses={200: PaymentSerializer,
                                                                **problems("payment_not_found")})
    def get(self, request: Request, payment_id: str) -> Response:
        payment = payment_get_visible(user=request.user, payment_id=payment_id)
        return Response(PaymentSerializer(payment_data(payment, user=request.user)).data)


class PaymentReclaimView(APIView):
    """Take back a payment you sent to an email nobody has claimed, after the claim period
    (``NUMPAY_UNCLAIMED_RECLAIM_DAYS``, default 30): a new payment from the waiting wallet back to you
    (201; repeating the call returns it with 200)."""

    @extend_schema(operation_id="payments_reclaim", request=None, responses={
        201: PaymentSerializer, 200: PaymentSerializer,
        **problems("payment_not_found", "payment_not_reclaimable", "payment_reclaim_too_early", "insufficient_funds",
                   "transaction_not_allowed", "fee_payer_cap_exceeded", "sponsorship_budget_exceeded",
                   "chain_unavailable", "chain_request_failed")})
    def post(self, request: Request, payment_id: str) -> Response:
        reclaim, created = payment_reclaim(user=request.user, payment_id=payment_id)
        return Response(PaymentSerializer(payment_data(reclaim, user=request.user)).data, status=201 if created else 200)


class PaymentCancelView(APIView):
    """Cancel a payment you sent that still waits for approval (``awaiting_approval``): it ends ``rejected`` and
    its reservation is released (your balance and your spending limits); nothing was signed. Repeating the
    call returns the cancelled payment."""

    @extend_schema(operation_id="payments_cancel", request=None, responses={
        200: PaymentSerializer, **problems("payment_not_found", "payment_not_cancellable")})
    def post(self, request: Request, payment_id: str) -> Response:
        payment = payment_cancel(user=request.user, payment_id=payment_id)
        return Response(PaymentSerializer(payment_data(payment, user=request.user)).data)


class LimitsSerializer(serializers.Serializer):
    """Limits as decimal strings in token units (``max_payments_per_hour``: a count); ``null`` = no limit."""

    per_transaction_cap = serializers.CharField(allow_null=True)
    daily_cap = serializers.CharField(allow_null=True, help_text="Per rolling 24 hours.")
    weekly_cap = serializers.CharField(allow_null=True, help_text="Per rolling 7 days.")
    monthly_cap = serializers.CharField(allow_null=True, help_text="Per rolling 30 days.")
    passkey_above = serializers.CharField(allow_null=True, help_text="Above this, a passkey must approve.")
    max_payments_per_hour = serializers.CharField(allow_null=True)


class TokenLimitsSerializer(serializers.Serializer):
    token = serializers.CharField()
    operator = LimitsSerializer(help_text="The tightest limits Numpay set for your account.")
    own = LimitsSerializer(help_text="Your own limits (they can only make the operator's tighter).")


class OwnLimitsView(APIView):
    """Your spending limits per token: Numpay's (operator) and your own. You may tighten them (set a lower
    value, or one where none was set); raising or removing an own limit, or going above Numpay's, is refused
    with ``limit_not_tighter``."""

    class OwnLimitsInputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=16)
        per_transaction_cap = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
        daily_cap = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
        weekly_cap = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
        monthly_cap = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
        passkey_above = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
        max_payments_per_hour = serializers.CharField(max_length=40, required=False, allow_null=True,
                                                      allow_blank=True)

    @extend_schema(operation_id="wallet_limits_list", responses={200: TokenLimitsSerializer(many=True),
                                                                 **problems()})
    def get(self, request: Request) -> Response:
        return Response(TokenLimitsSerializer(limits_overview(user=request.user, tokens=list(tokens_active())),
                                              many=True).data)

    @extend_schema(operation_id="wallet_limits_update", request=OwnLimitsInputSerializer, responses={
        200: TokenLimitsSerializer, **problems("unknown_token", "limit_not_tighter", "invalid_amount",
                                               "amount_not_positive", "too_many_decimals", "amount_too_large",
                                               body=True)})
    def put(self, request: Request) -> Response:
        data = self.OwnLimitsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        token = token_get(symbol=values.pop("token"))
        own_limits_set(user=request.user, token=token, limits=own_limits_parse(token=token, values=values))
        return Response(TokenLimitsSerializer(limits_overview(user=request.user, tokens=[token])[0]).data)


class ActivityItemSerializer(serializers.Serializer):
    """One line of the activity, as on the wallet's pages."""

    id = serializers.CharField(help_text="`payment:<uuid>` or `deposit:<id>`.")
    kind = serializers.ChoiceField(choices=["payment", "deposit"])
    direction = serializers.ChoiceField(choices=list(ACTIVITY_DIRECTIONS))
    token = serializers.CharField()
    amount = serializers.CharField(help_text="Token units (decimal string).")
    amount_base_units = serializers.CharField()
    decimals = serializers.IntegerField()
    counterparty = serializers.CharField(allow_blank=True, help_text="A Numpay user's name or email, or a shortened "
                                         "address (empty when unknown).")
    counterparty_address = serializers.CharField(allow_blank=True)
    memo = serializers.CharField(allow_blank=True)
    status = serializers.CharField(help_text="In plain words: \"Sending\", \"Completed\" or \"Failed: <why>\".")
    tone = serializers.ChoiceField(choices=["pending", "ok", "failed"])
    signature = serializers.CharField(allow_blank=True)
    slot = serializers.IntegerField(allow_null=True, help_text="Where it landed on chain; null while sending.")
    occurred_at = serializers.DateTimeField(help_text="Its chain time, UTC: the block time of the slot it landed in; "
                                            "while sending, when it was started; ended off chain, when it ended. "
                                            "Results are ordered by it (sending first), then by slot.")
    payment_id = serializers.UUIDField(allow_null=True)
    explorer_url = serializers.CharField(allow_blank=True, help_text="Empty when no explorer is configured.")


class ActivityPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="The next (older) page's URL; null on the last page.")
    results = ActivityItemSerializer(many=True)


class ActivityView(APIView):
    """Your wallet's activity (payments both ways, money from outside), newest first in chain order."""

    class ActivityQuerySerializer(serializers.Serializer):
        token = serializers.CharField(required=False, allow_blank=True, default="")
        direction = serializers.ChoiceField(choices=["", *ACTIVITY_DIRECTIONS], required=False, default="")
        cursor = serializers.CharField(required=False, allow_blank=True, default="")
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100, default=25)

    @extend_schema(operation_id="activity_list", parameters=[ActivityQuerySerializer],
                   responses={200: ActivityPageSerializer, **problems("invalid_request", "invalid_filter",
                                                                      "invalid_cursor", "wallet_not_found")})
    def get(self, request: Request) -> Response:
        query = self.ActivityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if params["token"] and params["token"] not in {t.symbol for t in tokens_active()}:
            raise ApplicationError("invalid_filter", "Filter by a token symbol and a direction: sent or received.",
                                   extra={"field": "token"})
        page = wallet_activity_page(wallet=wallet_for_user(user=request.user), limit=params["page_size"],
                                    token=params["token"], direction=params["direction"], cursor=params["cursor"])
        next_url = None
        if page.next_cursor:
            next_query = request.query_params.copy()
            next_query["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{next_query.urlencode()}")
        results = [{
            "id": f"{item.kind}:{item.item_id}", "kind": item.kind, "direction": item.direction, "token": item.token,
            "amount": item.ui_amount, "amount_base_units": str(item.amount), "decimals": item.decimals,
            "counterparty": item.counterparty, "counterparty_address": item.counterparty_address, "memo": item.memo,
            "status": item.status, "tone": item.tone, "signature": item.signature, "slot": item.slot,
            "occurred_at": item.occurred_at, "payment_id": item.payment_id, "explorer_url": item.explorer_url,
        } for item in page.items]
        return Response(ActivityPageSerializer({"next": next_url, "results": results}).data)
