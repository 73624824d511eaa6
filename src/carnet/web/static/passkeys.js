/* Passkeys (WebAuthn, issue #16-3): the forms marked data-cle-acces ask the server for the options (POST,
 * CSRF header), hand them to the browser (navigator.credentials.create or .get), then post the answer in the
 * form's hidden « reponse » field: the server checks it and answers with a page, as for any form.
 * A static file: the CSP (script-src 'self') forbids inline scripts. */
(function () {
  "use strict";

  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i += 1) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: toBuffer(item.id), transports: item.transports };
    });
  }

  function creationOptions(json) {
    json.challenge = toBuffer(json.challenge);
    json.user.id = toBuffer(json.user.id);
    json.excludeCredentials = descriptors(json.excludeCredentials);
    return json;
  }

  function requestOptions(json) {
    json.challenge = toBuffer(json.challenge);
    json.allowCredentials = descriptors(json.allowCredentials);
    return json;
  }

  function answerOf(credential) {
    if (typeof credential.toJSON === "function") {
      return JSON.stringify(credential.toJSON());
    }
    var response = credential.response;
    var answer = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      answer.response.attestationObject = toText(response.attestationObject);
      answer.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      answer.response.authenticatorData = toText(response.authenticatorData);
      answer.response.signature = toText(response.signature);
      answer.response.userHandle = toText(response.userHandle);
    }
    return JSON.stringify(answer);
  }

  function explain(error) {
    if (error && error.name === "NotAllowedError") {
      return "L'opération a été annulée ou le délai est dépassé. Réessayez.";
    }
    if (error && error.name === "InvalidStateError") {
      return "Cette clé d'accès est déjà enregistrée pour votre compte.";
    }
    if (error && error.name === "SecurityError") {
      return "Les clés d'accès ne sont pas disponibles sur cette adresse du service.";
    }
    if (error && error.carnet) {
      return error.message;
    }
    return "La clé d'accès n'a pas répondu. Réessayez, ou utilisez une autre méthode de connexion.";
  }

  function fetchOptions(url, csrf) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var refusal = new Error(data.erreur || "La demande a été refusée.");
          refusal.carnet = true;
          throw refusal;
        }
        return data;
      });
    });
  }

  function showError(form, message, field) {
    var box = form.querySelector("[data-cle-acces-erreur]");
    if (box) {
      box.querySelector("p").textContent = message;
      box.hidden = false;
    }
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  function start(form) {
    var csrf = form.querySelector("input[name=csrf_token]").value;
    var creation = form.getAttribute("data-cle-acces") === "creation";
    var name = form.querySelector("input[name=nom]");
    var button = form.querySelector("button[type=submit]");
    if (creation && name && !name.value.trim()) {
      showError(form, "Donnez un nom à cette clé d'accès, par exemple « Téléphone ».", name);
      return;
    }
    if (name) {
      name.removeAttribute("aria-invalid");
    }
    button.disabled = true;
    fetchOptions(form.getAttribute("data-options"), csrf)
      .then(function (options) {
        if (creation) {
          return navigator.credentials.create({ publicKey: creationOptions(options) });
        }
        return navigator.credentials.get({ publicKey: requestOptions(options) });
      })
      .then(function (credential) {
        form.querySelector("input[name=reponse]").value = answerOf(credential);
        form.submit();
      })
      .catch(function (error) {
        button.disabled = false;
        showError(form, explain(error));
      });
  }

  document.querySelectorAll("[data-cle-acces-si-possible]").forEach(function (element) {
    element.hidden = !supported;
  });
  document.querySelectorAll("[data-cle-acces-si-impossible]").forEach(function (element) {
    element.hidden = supported;
  });
  if (!supported) {
    return;
  }
  document.querySelectorAll("form[data-cle-acces]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      start(form);
    });
  });
})();
