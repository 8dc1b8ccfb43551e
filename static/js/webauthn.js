// WebAuthn's JSON shapes in the browser, shared by every passkey script (accounts/passkeys.js,
// payments/approval.js, payments/passkey_owner.js, recovery/recovery.js): base64url <-> bytes, the server's
// creation / request options (WebAuthn Level 3 JSON, as allauth and py_webauthn emit them) to what
// navigator.credentials takes, and a credential to its JSON (PublicKeyCredential.toJSON where the browser has it).
// Loaded before them (both `defer`, so in document order). No inline script (CSP).
(() => {
  "use strict";

  const b64uToBytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  };
  const bytesToB64u = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    bytes.forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const creationOptions = (json) => ({
    ...json,
    challenge: b64uToBytes(json.challenge),
    user: { ...json.user, id: b64uToBytes(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64uToBytes(c.id) })),
  });
  const requestOptions = (json) => ({
    ...json,
    challenge: b64uToBytes(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64uToBytes(c.id) })),
  });
  // A registration (attestationObject, transports) or an assertion (authenticatorData, signature, userHandle).
  const credentialJSON = (credential) => {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const r = credential.response;
    const response = { clientDataJSON: bytesToB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bytesToB64u(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = bytesToB64u(r.authenticatorData);
      response.signature = bytesToB64u(r.signature);
      response.userHandle = r.userHandle ? bytesToB64u(r.userHandle) : null;
    }
    return {
      id: credential.id, rawId: bytesToB64u(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response, clientExtensionResults: credential.getClientExtensionResults(),
    };
  };

  window.NumpayWebAuthn = Object.freeze({ b64uToBytes, bytesToB64u, creationOptions, requestOptions, credentialJSON });
})();
