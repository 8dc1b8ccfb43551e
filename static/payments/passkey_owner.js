// "Make this passkey an owner of your wallet" on the account page (payments/passkey_owners.py).
// [data-passkey-owner] button: POST owner-options -> navigator.credentials.get once per approval ("Approve 1 of
// N": an existing owner passkey signs the wallet program's challenge of the add_authority, then of each
// set_limits giving the new owner the first passkey's limits, payments/passkey_limits.py) -> POST owner with all
// of them -> reload (the row says "Becoming an owner…" until every part landed). Cancelling a prompt changes
// nothing (nothing is sent before all are collected). No inline script (CSP); the server and the chain check
// everything, this only carries bytes.
// "Let this passkey approve payments on its own" ([data-passkey-limits]): the same, with limits-options / limits,
// for an owner passkey made an owner before owners got limits.
// "Remove from wallet" (payments/passkey_removals.py): [data-passkey-unown] button: POST removal-options ->
// navigator.credentials.get (an owner passkey, normally another one than the passkey removed, signs the program's
// challenge of the remove_authority) -> POST removal -> polls its status_url each second and says where it is
// (in flight -> done, or failed with the network's reason); once done the row says so and, after a reload, the
// passkey has its ordinary "Remove" (from the account).
(() => {
  "use strict";

  const { requestOptions, credentialJSON } = window.NumpayWebAuthn;

  const { post: api, problem, messageBox } = window.NumpayApi;
  const say = messageBox("[data-owner-message]");

  let busy = false;

  // Every approval a change needs, one ceremony each ("Approve 1 of N"), all by the same owner passkey: the
  // wallet program bumps its nonce per approved action, so each action has its own challenge. Nothing is sent
  // before all are collected; a cancelled prompt changes nothing. Returns the credentials, or null.
  const approveAll = async (options, what) => {
    const approvals = options.approvals || [options.public_key];
    const credentials = [];
    let allow = null;
    for (let index = 0; index < approvals.length; index += 1) {
      say(approvals.length > 1
        ? `Approve ${index + 1} of ${approvals.length} with a passkey that already owns your wallet (${what})…`
        : `Approve with a passkey that already owns your wallet (${what})…`);
      const publicKey = requestOptions(allow ? { ...approvals[index], allowCredentials: allow } : approvals[index]);
      let credential;
      try {
        credential = await navigator.credentials.get({ publicKey });
      } catch (error) {
        say(error && (error.name === "NotAllowedError" || error.name === "AbortError")
          ? "You cancelled; nothing changed." : "This browser could not use a passkey here.");
        return null;
      }
      const json = credentialJSON(credential);
      // the next approvals by the same passkey (the server refuses a set made by several)
      allow = [{ type: "public-key", id: json.rawId }];
      credentials.push(json);
    }
    return credentials;
  };

  const submitApprovals = async (button, optionsUrl, submitUrl, what, doneMessage) => {
    if (busy) return;  // one ceremony sequence at a time: each reads the config's nonce
    busy = true;
    button.disabled = true;
    try {
      say("Approve with a passkey that already owns your wallet…");
      const options = await api(optionsUrl);
      if (!options.ok) { say(problem(options.json)); return; }
      const credentials = await approveAll(options.json, what);
      if (!credentials) return;
      const result = await api(submitUrl, {
        credentials, nonce: options.json.nonce, expires_at: options.json.expires_at,
      });
      if (!result.ok) { say(problem(result.json)); return; }
      say(doneMessage);
      window.location.reload();
    } finally {
      busy = false;
      button.disabled = false;
    }
  };

  const makeOwner = (button) => submitApprovals(button, button.dataset.optionsUrl, button.dataset.ownerUrl,
    "to add this passkey with its payment limits", "Approved. Adding it to your wallet…");
  const giveLimits = (button) => submitApprovals(button, button.dataset.optionsUrl, button.dataset.limitsUrl,
    "to let this passkey approve payments on its own", "Approved. Writing its limits to your wallet…");

  const { request } = window.NumpayApi;
  const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
  const IN_FLIGHT = ["signed", "submitted"];

  const followRemoval = async (button, removal) => {
    const cell = button.closest("td");
    let current = removal;
    while (IN_FLIGHT.includes(current.status)) {
      say("Approved. Taking this passkey off your wallet on the network…");
      await pause(1000);
      const answer = await request(current.status_url, "GET");
      if (!answer.ok) { say(problem(answer.json)); return; }
      current = answer.json;
    }
    if (current.status === "confirmed") {
      if (cell) cell.textContent = "Removed from your wallet";
      say("Done: this passkey no longer owns your wallet. Reload the page to remove it from your account.");
    } else {
      say(`Your wallet was not changed: ${current.error_message || "the network did not take the change in time."}`
        + " You can try again.");
      button.hidden = false;
    }
  };

  const removeFromWallet = async (button) => {
    if (busy) return;
    busy = true;
    button.disabled = true;
    try {
      say("Approve with a passkey that owns your wallet (another one, if this passkey's device is lost)…");
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
      const result = await api(button.dataset.removalUrl, {
        credential: credentialJSON(credential), nonce: options.json.nonce, expires_at: options.json.expires_at,
      });
      if (!result.ok) { say(problem(result.json)); return; }
      button.hidden = true;
      await followRemoval(button, result.json);
    } catch (error) {
      say("The connection was lost; reload the page to see where the change is.");
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
    const limits = event.target.closest("[data-passkey-limits]");
    if (limits) {
      event.preventDefault();
      giveLimits(limits);
    }
    const unown = event.target.closest("[data-passkey-unown]");
    if (unown) {
      event.preventDefault();
      removeFromWallet(unown);
    }
  });
})();
