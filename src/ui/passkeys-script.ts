/**
 * The OP's one browser script, served at /passkeys.js (the pages' CSP is `script-src 'self'`: no inline script).
 * Progressive enhancement: every passkey control is `hidden` in the HTML and shown only where WebAuthn exists, and
 * every page works without it (email sign-in, "Not now").
 *
 * A ceremony: POST the form's CSRF token (and interaction) to the form's `data-options` URL → `{challenge, publicKey}`
 * → navigator.credentials.create/get → the response, as JSON, goes into the form's `response` field and the form is
 * submitted as an ordinary POST, so the server answers with a page or a redirect like every other form.
 *
 * - `form[data-passkey=sign-in]`: the "Sign in with a passkey" button (modal), and conditional mediation (the
 *   browser's autofill on the `autocomplete="username webauthn"` email field) when the browser offers it;
 * - `form[data-passkey=register]`: "Add a passkey" (offer page, account page);
 * - `input[name=passkey_capable]`: set to 1, so the server knows it may offer a passkey after an email sign-in.
 */
export const PASSKEY_SCRIPT = String.raw`"use strict";
(function () {
  var supported = typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function withIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBytes(c.id) }); });
  }
  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials),
    });
  }
  function requestOptions(json) {
    return Object.assign({}, json, { challenge: toBytes(json.challenge), allowCredentials: withIds(json.allowCredentials) });
  }
  // RegistrationResponseJSON / AuthenticationResponseJSON (WebAuthn Level 3 §5.1.8), written out for older browsers.
  function responseJson(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(r.clientDataJSON) },
    };
    if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) out.response.userHandle = toText(r.userHandle);
    }
    return out;
  }

  function field(form, name) {
    var element = form.elements.namedItem(name);
    return element && "value" in element ? element : null;
  }
  // What the script says comes from the page, in its language: the form's data-say-NAME attributes.
  function say(form, name) {
    var status = form.querySelector("[role=status]");
    if (status) status.textContent = form.getAttribute("data-say-" + name) || "";
  }
  function busy(form, on) {
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = on;
  }
  async function fetchOptions(form) {
    var body = new URLSearchParams();
    ["csrf_token", "interaction"].forEach(function (name) {
      var f = field(form, name);
      if (f && f.value) body.set(name, f.value);
    });
    var answer = await fetch(form.dataset.options, { method: "POST", body: body, credentials: "same-origin", headers: { accept: "application/json" } });
    var data = await answer.json().catch(function () { return null; });
    if (!answer.ok || !data || !data.publicKey) {
      var code = data && data.error;
      var failure = new Error(code || "no answer");
      failure.say = code === "rate_limited" ? "too-many" : code === "login_required" ? "signed-out" : "failed";
      throw failure;
    }
    return data;
  }
  function finish(form, challenge, credential) {
    field(form, "challenge").value = challenge;
    field(form, "response").value = JSON.stringify(responseJson(credential));
    form.submit();
  }
  function problem(error) {
    if (error && error.name === "NotAllowedError") return "cancelled";
    if (error && error.name === "InvalidStateError") return "exists";
    if (error && error.name === "SecurityError") return "bad-address";
    return (error && error.say) || "failed";
  }

  var inputs = document.querySelectorAll("input[name=passkey_capable]");
  for (var i = 0; i < inputs.length; i++) if (supported) inputs[i].value = "1";
  if (!supported) return;

  var waiting = null; // the conditional (autofill) request, aborted when the button is pressed

  var signIn = document.querySelector("form[data-passkey=sign-in]");
  if (signIn) {
    signIn.hidden = false;
    signIn.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (waiting) waiting.abort();
      busy(signIn, true);
      say(signIn, "waiting");
      try {
        var options = await fetchOptions(signIn);
        var credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
        say(signIn, "signing-in");
        finish(signIn, options.challenge, credential);
      } catch (error) {
        say(signIn, problem(error));
        busy(signIn, false);
      }
    });
    (async function conditional() {
      if (!document.querySelector("input[autocomplete~=webauthn]")) return;
      if (typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
      if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
      var controller = new AbortController();
      waiting = controller;
      try {
        var options = await fetchOptions(signIn);
        if (controller.signal.aborted) return;
        var credential = await navigator.credentials.get({ mediation: "conditional", publicKey: requestOptions(options.publicKey), signal: controller.signal });
        if (!controller.signal.aborted) finish(signIn, options.challenge, credential);
      } catch (error) {
        // Aborted (the button was pressed) or dismissed: the button and the email form are still there.
      }
    })();
  }

  var registers = document.querySelectorAll("form[data-passkey=register]");
  registers.forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      busy(form, true);
      say(form, "creating");
      try {
        var options = await fetchOptions(form);
        var credential = await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) });
        say(form, "saving");
        finish(form, options.challenge, credential);
      } catch (error) {
        say(form, problem(error));
        busy(form, false);
      }
    });
  });
})();
`;
