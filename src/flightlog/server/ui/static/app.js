// The little JavaScript of the flightlog UI: keyboard moves, span selection, diff layout,
// in-browser proof checks (verify.js), live updates by polling, and the two actions.
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const visible = () => document.visibilityState === "visible";

  async function getJSON(url, options) {
    const res = await fetch(url, Object.assign({ headers: { accept: "application/json" } }, options || {}));
    let body = null;
    try {
      body = await res.json();
    } catch (err) {
      body = { error: `HTTP ${res.status}` };
    }
    return { ok: res.ok, status: res.status, body };
  }

  async function fetchDoc(url) {
    const res = await fetch(url, { headers: { accept: "text/html" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return new DOMParser().parseFromString(await res.text(), "text/html");
  }

  // Arrow keys move focus among `items()`; Home/End jump to the ends.
  function arrowKeys(container, items) {
    container.addEventListener("keydown", (ev) => {
      const list = items();
      const at = list.indexOf(document.activeElement);
      if (at < 0) return;
      const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: list.length - 1 }[ev.key];
      if (to === undefined || to < 0 || to >= list.length) return;
      ev.preventDefault();
      list[to].focus();
      list[to].scrollIntoView({ block: "nearest" });
    });
  }

  function updateCheckpoint(size, root, signed) {
    const cp = $("#checkpoint");
    if (!cp || !Number.isSafeInteger(size)) return;
    if (Number(cp.dataset.size || 0) > size) return;
    cp.dataset.size = String(size);
    $("#cp-size").textContent = String(size);
    $("#cp-root").textContent = root.slice(0, 16) + "…";
    $("#cp-root").title = root;
    if (signed) $("#cp-sig").textContent = "signature checked in this browser";
  }

  // ---- trace list -------------------------------------------------------------------------
  function listPage() {
    const rows = () => $$(".trace-row .trace-link");
    arrowKeys(document.body, rows);
    document.addEventListener("click", (ev) => {
      const row = ev.target.closest(".trace-row");
      if (row && !ev.target.closest("a")) location.href = row.dataset.href;
    });
    // Empty filters stay out of the URL, so links to a search stay short.
    const form = $("form.filters");
    if (form) {
      form.addEventListener("formdata", (ev) => {
        for (const [key, value] of Array.from(ev.formData.entries())) if (!value) ev.formData.delete(key);
      });
    }
    const list = $("#list");
    if (!list || !list.dataset.live) return;
    const params = new URLSearchParams(location.search);
    params.set("limit", "1");
    setInterval(async () => {
      if (!visible()) return;
      const current = $("#list");
      const { ok, body } = await getJSON(`/api/v1/traces?${params}`);
      const newest = ok && body.traces.length ? String(body.traces[0].cursor) : "";
      if (!ok || newest === (current.dataset.newest || "")) return;
      const doc = await fetchDoc(location.href);
      const fresh = $("#list", doc);
      if (fresh) current.replaceWith(fresh);
      const freshCp = $("#checkpoint", doc);
      if (freshCp) $("#checkpoint").replaceWith(freshCp);
    }, 3000);
  }

  // ---- trace view -------------------------------------------------------------------------
  function tracePage() {
    const trace = $("#trace");
    const traceId = trace.dataset.traceId;
    let selected = null;

    function select(index, focusDetails) {
      const detail = $(`#d-${index}`);
      if (!detail) return;
      $$(".detail").forEach((d) => (d.hidden = d !== detail));
      $$(".span").forEach((b) => {
        const on = b.dataset.index === String(index);
        b.setAttribute("aria-expanded", String(on));
        b.closest(".span-row").classList.toggle("selected", on);
      });
      $("#hint").hidden = true;
      selected = String(index);
      history.replaceState(null, "", `#e-${index}`);
      if (focusDetails || window.matchMedia("(max-width: 900px)").matches) {
        detail.scrollIntoView({ block: "start" });
      }
      if (focusDetails) detail.focus();
    }

    // Clicks: spans, and "files changed" links (which select the file_op span).
    trace.addEventListener("click", (ev) => {
      const span = ev.target.closest(".span");
      if (span) return select(span.dataset.index, false);
      const file = ev.target.closest(".file-link");
      if (file) {
        select(file.dataset.index, true);
        $(`#s-${file.dataset.index}`).scrollIntoView({ block: "nearest" });
      }
    });
    arrowKeys(trace, () => $$(".span"));
    // Escape in the details goes back to the span.
    trace.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && selected !== null && ev.target.closest(".detail")) $(`#s-${selected}`).focus();
    });

    // Diff layout: unified or side by side, remembered.
    function setMode(mode) {
      document.body.classList.toggle("diff-split", mode === "split");
      $$(".mode").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
      try {
        localStorage.setItem("flightlog.diffMode", mode);
      } catch (err) {
        /* storage off: the choice lasts for this page */
      }
    }
    $$(".mode").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
    try {
      setMode(localStorage.getItem("flightlog.diffMode") || "unified");
    } catch (err) {
      setMode("unified");
    }

    // Proofs: each event checked once per page load (and new events as they arrive).
    const results = new Map();
    let keys = null;
    async function verifierKeys() {
      if (keys === null) {
        const { ok, body } = await getJSON("/api/v1/checkpoint");
        keys = ok && Array.isArray(body.verifier_keys) ? body.verifier_keys : [];
      }
      return keys;
    }

    function showResult(eventId, result) {
      $$(`[data-verify="${CSS.escape(eventId)}"]`).forEach((badge) => {
        badge.classList.remove("checking");
        badge.classList.toggle("verified", result.ok);
        badge.classList.toggle("failed", !result.ok);
        badge.textContent = result.ok ? "verified" : "not verified";
        badge.title = result.ok
          ? `leaf ${result.leafHash} is in the signed checkpoint of ${result.size} entries`
          : `not verified: ${result.reason}`;
        const leaf = $(`.leaf-hash[data-leaf="${badge.dataset.index}"]`);
        if (leaf) leaf.textContent = result.ok ? `leaf hash ${result.leafHash}` : result.reason;
      });
      const all = $$("#waterfall [data-verify]");
      const good = all.filter((b) => b.classList.contains("verified")).length;
      const bad = all.filter((b) => b.classList.contains("failed")).length;
      const summary = $("#verify-summary");
      summary.textContent = `${good} of ${all.length} events verified` + (bad ? `, ${bad} NOT verified` : "");
      summary.className = bad ? "failed" : good === all.length ? "verified" : "";
      if (result.ok) updateCheckpoint(result.size, result.root, true);
    }

    async function verifyAll() {
      const pending = $$("#waterfall [data-verify]").filter((b) => !results.has(b.dataset.verify));
      const keyTexts = await verifierKeys();
      const queue = pending.map((b) => [b.dataset.verify, Number(b.dataset.index)]);
      async function worker() {
        while (queue.length) {
          const [eventId, index] = queue.shift();
          if (results.has(eventId)) continue;
          results.set(eventId, null);
          let result;
          try {
            const { ok, body } = await getJSON(`/api/v1/events/${encodeURIComponent(eventId)}?proof=1`);
            result = ok
              ? await window.flightlogVerify.checkEventProof(body, eventId, index, keyTexts)
              : { ok: false, reason: body.error || "no proof" };
          } catch (err) {
            result = { ok: false, reason: String(err) };
          }
          results.set(eventId, result);
          showResult(eventId, result);
        }
      }
      await Promise.all([worker(), worker(), worker(), worker()]);
    }
    function reapplyResults() {
      for (const [eventId, result] of results) if (result) showResult(eventId, result);
    }

    // Live: poll the trace; when it grew, swap in the new timeline and details.
    let known = Number(trace.dataset.events);
    let quiet = 0;
    async function poll() {
      if (visible()) {
        const { ok, body } = await getJSON(`/api/v1/traces/${traceId}`);
        if (ok && body.events.length !== known) {
          const doc = await fetchDoc(location.pathname);
          const fresh = $("#trace-live", doc);
          if (fresh) {
            $("#trace-live").replaceWith(fresh);
            const head = $(".trace-head dl", doc);
            if (head) $(".trace-head dl").replaceWith(head);
            known = body.events.length;
            trace.dataset.events = String(known);
            reapplyResults();
            if (selected !== null) select(selected, false);
            $("#live").textContent = `live: ${known} events, updated ${new Date().toLocaleTimeString()}`;
            verifyAll();
          }
          quiet = 0;
        } else {
          quiet += 1;
        }
      }
      setTimeout(poll, quiet > 150 ? 10000 : 2000); // a trace quiet for 5 minutes is polled less
    }
    setTimeout(poll, 2000);

    // Actions.
    const dialog = $("#confirm");
    function confirmDialog(title, text, code, okLabel) {
      $("#confirm-title").textContent = title;
      $("#confirm-text").textContent = text;
      $("#confirm-code").hidden = !code;
      $("#confirm-code").textContent = code || "";
      $("#confirm-ok").textContent = okLabel;
      dialog.returnValue = "";
      dialog.showModal();
      return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
    }
    const say = (text, bad) => {
      const out = $("#action-result");
      out.textContent = text;
      out.className = bad ? "failed" : "";
    };

    $("#copy-replay").addEventListener("click", async () => {
      const command = `flightlog rollback ${traceId} --dry-run`;
      if (!(await confirmDialog("Copy replay command", "Copy this command to the clipboard?", command, "Copy"))) return;
      try {
        await navigator.clipboard.writeText(command);
        say(`Copied: ${command}`);
      } catch (err) {
        say(`Could not copy (${err.message}); the command is: ${command}`, true);
      }
    });

    $("#rollback").addEventListener("click", async () => {
      const url = `/api/v1/traces/${traceId}/rollback`;
      const post = (dryRun) =>
        getJSON(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ dry_run: dryRun }) });
      const plan = await post(true);
      if (!plan.ok) return say(`Roll back is not possible: ${plan.body.error || "HTTP " + plan.status}`, true);
      const text = `Undo the changes this trace made? Recorded as done by ${plan.body.actor}.`;
      if (!(await confirmDialog("Roll back this trace", text, JSON.stringify(plan.body.result, null, 2), "Roll back"))) return;
      const done = await post(false);
      say(done.ok ? "Rolled back: " + JSON.stringify(done.body.result) : `Roll back failed: ${done.body.error}`, !done.ok);
    });

    const m = /^#e-(\d+)$/.exec(location.hash);
    if (m) select(m[1], false);
    verifyAll();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const kind = document.body.dataset.page;
    if (kind === "list") listPage();
    if (kind === "trace") tracePage();
  });
})();
