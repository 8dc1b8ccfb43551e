// "Make this passkey an owner of your wallet" on the account page (payments/passkey_owners.py).
// [data-passkey-owner] button: POST owner-options -> navigator.credentials.get (an existing owner passkey signs
// the wallet program's challenge of the add_authority) -> POST owner -> reload (the row says "Becoming an
// owner…" until the transaction lands). Cancelling the prompt changes nothing. No inline script (CSP); the
// server and the chain check everything, this only carries bytes.
(() => {
  "use strict";

  const { requestOptions, credentialJSON } = window.NumpayWebAuthn;

  const { post: api, problem, messageBox } = window.NumpayApi;
  const say = messageBox("[data-owner-message]");

  let busy = false;
  const makeOwner = async (button) => {
    if (busy) return;  // one ceremony at a time: each reads the config's nonce
    busy = true;
    button.disabled = true;
    try {
      say("Approve with a passkey that already owns your wallet…");
      const options = await api(button.dataset.optionsUrl);
      if (!options.ok) { say(problem(options.json)); return; }
      let credential;
      try {
        credential = await navigator.credentials.get({ publicKey: requestOptions(options.json.public_key) });
      } catch (error) {
        say(error && (error.name === "NotAllowedError" || error.name === "AbortError")
          ? "You cancelled; nothing changed." : "This browser could not use a passkey here.");
        return;
      }
      const result = await api(button.dataset.ownerUrl, {
        credential: credentialJSON(credential), nonce: options.json.nonce, expires_at: options.json.expires_at,
      });
      if (!result.ok) { say(problem(result.json)); return; }
      say("Approved. Adding it to your wallet…");
      window.location.reload();
    } finally {
      busy = false;
      button.disabled = false;
    }
  };

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-passkey-owner]");
    if (button) {
      event.preventDefault();
      makeOwner(button);
    }
  });
})();
