// "Approve on your device": a payment's passkey step-up (payments/approvals.py) from its page.
// [data-approve-payment] button: POST approval-options -> navigator.credentials.get -> POST approve -> reload.
// A prompt the user cancels (NotAllowedError / AbortError) ends the payment (POST cancel): nothing is signed and
// the reservation is released. No inline script (CSP); the server checks everything, this only carries bytes.
(() => {
  "use strict";

  const { requestOptions, credentialJSON } = window.NumpayWebAuthn;

  const { post: api, problem, messageBox } = window.NumpayApi;
  const say = messageBox("[data-approval-message]");

  // Secure Payment Confirmation: the browser's own sheet shows the payee and the total, and the passkey signs
  // them (clientDataJSON type "payment.get"). Any failure (unsupported, no payment credential, closed) falls
  // back to the plain passkey prompt over the same single-use challenge; only that prompt's cancel ends the
  // payment.
  const securePaymentConfirmation = async (options) => {
    const details = options.secure_payment_confirmation;
    if (!details || typeof window.PaymentRequest !== "function") return null;
    const publicKey = requestOptions(options.public_key);
    const data = {
      credentialIds: publicKey.allowCredentials.map((c) => c.id), challenge: publicKey.challenge,
      rpId: publicKey.rpId, timeout: publicKey.timeout, payeeName: details.payeeName,
      instrument: { displayName: details.instrument.displayName,
        icon: new URL(details.instrument.icon, window.location.origin).href },
    };
    try {
      const request = new PaymentRequest([{ supportedMethods: "secure-payment-confirmation", data }],
        { total: { label: "Total", amount: details.total } });
      if (!(await request.canMakePayment())) return null;
      const response = await request.show();
      await response.complete("success");
      return response.details;
    } catch (error) {
      return null;
    }
  };

  const approve = async (button) => {
    button.disabled = true;
    say("Approve on your device…");
    let options = await api(button.dataset.optionsUrl);
    // the wallet's switch to protected mode is landing: it takes a moment
    for (let tries = 0; !options.ok && options.json.code === "wallet_protection_pending" && tries < 20; tries += 1) {
      await new Promise((resolve) => { setTimeout(resolve, 1000); });
      options = await api(button.dataset.optionsUrl);
    }
    if (!options.ok) {
      say(problem(options.json));
      button.disabled = false;
      return;
    }
    let credential = await securePaymentConfirmation(options.json);
    try {
      if (!credential) {
        credential = await navigator.credentials.get({ publicKey: requestOptions(options.json.public_key) });
      }
    } catch (error) {
      if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
        // the user closed the prompt: the payment ends, its amount is released
        say("You cancelled the approval; the payment is cancelled and nothing left your wallet.");
        await api(button.dataset.cancelUrl);
        window.location.reload();
        return;
      }
      say("This browser could not use a passkey here. Try another device, or cancel the payment.");
      button.disabled = false;
      return;
    }
    const result = await api(button.dataset.approveUrl, { credential: credentialJSON(credential) });
    if (!result.ok) {
      say(problem(result.json));
      button.disabled = false;
      return;
    }
    const { received, required } = result.json.approvals;
    say(received >= required ? "Approved. Sending…" : `${received} of ${required} approvals`);
    window.location.reload();
  };

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-approve-payment]");
    if (button) {
      event.preventDefault();
      approve(button);
    }
  });
})();
