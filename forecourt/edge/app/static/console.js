/* Forecourt edge console: live activation progress (Server-Sent Events) and in-page
 * verification of ledger inclusion proofs (RFC 9162 §2.1.3.2). No framework, no inline script. */
"use strict";

(function () {
  // -- live progress ---------------------------------------------------------------------------
  function renderProgress(card, p) {
    card.className = "wf state-" + p.state;
    card.dataset.terminal = p.terminal ? "true" : "false";
    var badge = card.querySelector('[data-role="state"]');
    badge.textContent = p.label;
    badge.className = "badge badge-" + p.state;
    var bar = card.querySelector('[data-role="bar"]');
    bar.value = p.percent;
    bar.textContent = p.percent + "%";
    var steps = card.querySelector('[data-role="steps"]');
    p.steps.forEach(function (s) {
      var li = steps.querySelector('[data-state="' + s.state + '"]');
      if (!li) return;
      li.className = "step step-" + s.status;
      li.textContent = s.label;
      if (s.ms !== null && s.ms !== undefined) {
        var ms = document.createElement("span");
        ms.className = "ms";
        ms.textContent = " " + s.ms + " ms";
        li.appendChild(ms);
      }
    });
    var bytes = card.querySelector('[data-role="bytes"]');
    bytes.textContent = (p.bytes_total ? p.bytes_done + " / " + p.bytes_total + " bytes" : "") +
      (p.offline ? " · offline package" : "");
    var reason = card.querySelector('[data-role="reason"]');
    if (p.error_code) {
      reason.hidden = false;
      reason.textContent = "";
      var strong = document.createElement("strong");
      strong.textContent = p.error_code.replace(/_/g, " ");
      reason.appendChild(strong);
      reason.appendChild(document.createTextNode(": " + (p.error_detail || "")));
    }
    var row = document.querySelector('tr[data-vin="' + p.vin + '"] .badge');
    if (row) { row.textContent = p.label; row.className = "badge badge-" + p.state; }
    var review = card.querySelector('[data-role="review"]');
    if (review && p.state !== "awaiting_review") review.hidden = true;
  }

  function follow(card) {
    if (!window.EventSource || card.dataset.terminal === "true") return;
    var id = card.dataset.workflowId;
    var source = new EventSource("/api/v1/activations/" + encodeURIComponent(id) + "/events");
    source.addEventListener("progress", function (e) { renderProgress(card, JSON.parse(e.data)); });
    source.addEventListener("end", function () { source.close(); });
    source.onerror = function () {
      if (card.dataset.terminal === "true") source.close();
    };
  }

  // -- ledger proofs ---------------------------------------------------------------------------
  function b64(text) {
    var raw = atob(text), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function concat(parts) {
    var n = parts.reduce(function (a, p) { return a + p.length; }, 0), out = new Uint8Array(n), o = 0;
    parts.forEach(function (p) { out.set(p, o); o += p.length; });
    return out;
  }
  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }
  function leafHash(index, payload) {
    var prefix = new Uint8Array(9), view = new DataView(prefix.buffer);
    view.setUint8(0, 0x00);
    view.setBigUint64(1, BigInt(index));
    return sha256(concat([prefix, payload]));
  }
  function nodeHash(left, right) {
    return sha256(concat([new Uint8Array([0x01]), left, right]));
  }
  async function rootFromProof(index, size, leaf, proof) {
    if (index >= size) throw new Error("index beyond tree");
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < proof.length; i++) {
      if (sn === 0) throw new Error("proof too long");
      if ((fn & 1) || fn === sn) {
        r = await nodeHash(proof[i], r);
        if (!(fn & 1)) { while (fn && !(fn & 1)) { fn >>= 1; sn >>= 1; } }
      } else {
        r = await nodeHash(r, proof[i]);
      }
      fn >>= 1; sn >>= 1;
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  async function verifyRow(row, root) {
    var verdict = row.querySelector('[data-role="verdict"]');
    try {
      var index = Number(row.dataset.index), size = Number(row.dataset.treeSize);
      var proof = row.dataset.proof ? row.dataset.proof.split(",").map(b64) : [];
      var leaf = await leafHash(index, b64(row.dataset.payload));
      var ok = equal(await rootFromProof(index, size, leaf, proof), root);
      verdict.textContent = ok ? "verified" : "altered";
      verdict.className = "badge " + (ok ? "badge-done" : "badge-failed");
    } catch (err) {
      verdict.textContent = "altered";
      verdict.className = "badge badge-failed";
      verdict.title = String(err);
    }
  }
  function verifyLedger() {
    var checkpoint = document.getElementById("checkpoint");
    if (!checkpoint) return;
    var rows = document.querySelectorAll("tr.entry");
    if (!window.crypto || !crypto.subtle) {
      rows.forEach(function (row) {
        row.querySelector('[data-role="verdict"]').textContent = "cannot verify without HTTPS";
      });
      return;
    }
    var root = b64(checkpoint.dataset.root);
    rows.forEach(function (row) { verifyRow(row, root); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("article.wf").forEach(follow);
    verifyLedger();
  });
})();
