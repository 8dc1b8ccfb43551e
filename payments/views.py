"""Pages for payments: send (form -> review -> create), a live payment status page, activity."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from numpay.core.errors import ApplicationError, NotFoundError
from numpay.core.money import format_amount
from wallets.selectors import tokens_active
from wallets.services import wallet_for_user

from .requests import PaymentRequest
from .selectors import payment_get_visible, wallet_activity
from .services import payment_create, payment_plan


def _form_request(request: HttpRequest) -> PaymentRequest:
    return PaymentRequest(to=request.POST.get("to", "").strip(), token=request.POST.get("token", "USDC"),
                          amount=request.POST.get("amount", "").strip(), memo=request.POST.get("memo", "").strip())


@login_required
@require_http_methods(["GET", "POST"])
def send(request: HttpRequest) -> HttpResponse:
    """Step 1 (form) and step 2 (review, "Network fee: sponsored"); the confirm button creates the payment.

    Each review carries a fresh Idempotency-Key, so a double-clicked confirm pays once.
    """
    context: dict[str, object] = {"tokens": tokens_active(), "form": request.POST or {"token": "USDC"}}
    if request.method == "POST":
        pay_request = _form_request(request)
        step = request.POST.get("step", "review")
        try:
            if step == "confirm":
                payment, _ = payment_create(user=request.user, request=pay_request,
                                            idempotency_key=request.POST.get("idempotency_key"))
                return redirect("payment-detail", payment_id=payment.pk)
            plan = payment_plan(user=request.user, request=pay_request)
            context.update({"plan": plan, "idempotency_key": uuid.uuid4(), "request_data": pay_request,
                            "recipient_label": pay_request.to})
            return render(request, "wallets/send_review.html", context)
        except ApplicationError as exc:
            context.update({"error": exc.message, "error_code": exc.code, "error_field": exc.extra.get("field", "")})
    return render(request, "wallets/send.html", context)


@login_required
def payment_detail(request: HttpRequest, payment_id: str) -> HttpResponse:
    """A payment's page; the status card refreshes itself (htmx) until the payment is final."""
    try:
        payment = payment_get_visible(user=request.user, payment_id=payment_id)
    except NotFoundError as exc:
        raise Http404 from exc
    context = {"payment": payment, "ui_amount": format_amount(payment.amount, decimals=payment.token.decimals),
               "ui_network_fee": format_amount(payment.network_fee, decimals=payment.token.decimals),
               "is_sender": payment.sender_id == request.user.pk}
    template = "wallets/_payment_status.html" if request.htmx else "wallets/payment_detail.html"
    return render(request, template, context)


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """The wallet's activity (payments both ways and deposits), as a page or an htmx fragment."""
    items = wallet_activity(wallet=wallet_for_user(user=request.user), limit=50)
    template = "wallets/_activity.html" if request.htmx else "wallets/activity.html"
    return render(request, template, {"activity": items})
