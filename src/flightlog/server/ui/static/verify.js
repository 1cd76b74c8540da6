// Checks an event's inclusion proof in the browser, from the API's data only:
//   1. the leaf bytes are this event (its event_id), at the index the page shows;
//   2. leaf hash = SHA-256(0x00 || leaf bytes)                      (RFC 6962 §2.1)
//   3. walking the audit path gives the root                        (RFC 9162 §2.1.3.2)
//   4. that root and size are the ones in the signed checkpoint note (C2SP tlog-checkpoint)
//   5. the note carries a valid Ed25519 signature by one of the log's verifier keys (C2SP signed-note)
// Any failure gives "not verified" with the reason.
"use strict";

(() => {
  const enc = new TextEncoder();

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function fromHex(text) {
    if (typeof text !== "string" || !/^(?:[0-9a-f]{2})*$/.test(text)) throw new Error("malformed hex");
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
    return out;
  }

  function fromBase64(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error("malformed base64");
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // RFC 9162 §2.1.3.2: the root computed from a leaf hash and its audit path.
  async function rootFromInclusionProof(index, size, leaf, proof) {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
      throw new Error("index out of range");
    }
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (p.length !== 32) throw new Error("proof hash is not 32 bytes");
      if (sn === 0) throw new Error("proof too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }

  // C2SP signed note: body (ending in "\n"), a blank line, then "— <name> <base64(key id || sig)>" lines.
  function parseNote(note) {
    const split = note.indexOf("\n\n");
    if (split < 0) throw new Error("note has no signature block");
    const body = note.slice(0, split + 1);
    const lines = body.split("\n");
    if (lines.length < 4 || !/^[1-9][0-9]*$|^0$/.test(lines[1])) throw new Error("malformed checkpoint");
    const signatures = note
      .slice(split + 2)
      .split("\n")
      .filter((l) => l)
      .map((l) => {
        const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(l);
        if (!m) throw new Error("malformed signature line");
        const raw = fromBase64(m[2]);
        return { name: m[1], keyId: raw.slice(0, 4), sig: raw.slice(4) };
      });
    return { body, origin: lines[0], size: Number(lines[1]), root: fromBase64(lines[2]), signatures };
  }

  // Verifier key: <name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>.
  async function parseVerifierKey(text) {
    const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text);
    if (!m) throw new Error("malformed verifier key");
    const raw = fromBase64(m[3]);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 verifier key");
    const id = (await sha256(concat(enc.encode(m[1] + "\n"), raw))).slice(0, 4);
    if (hex(id) !== m[2]) throw new Error("verifier key id does not match its key");
    return { name: m[1], keyId: id, publicKey: raw.slice(1) };
  }

  const noteResults = new Map();

  async function checkNoteSignature(note, keyTexts) {
    const keys = await Promise.all(keyTexts.map(parseVerifierKey));
    const parsed = parseNote(note);
    for (const s of parsed.signatures) {
      const key = keys.find((k) => k.name === s.name && equal(k.keyId, s.keyId));
      if (!key || s.name !== parsed.origin) continue;
      const imported = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
      if (await crypto.subtle.verify({ name: "Ed25519" }, imported, s.sig, enc.encode(parsed.body))) return parsed;
    }
    throw new Error("no valid signature by a known key on the checkpoint");
  }

  function verifiedNote(note, keyTexts) {
    const key = note + "\n" + keyTexts.join("\n");
    if (!noteResults.has(key)) noteResults.set(key, checkNoteSignature(note, keyTexts));
    return noteResults.get(key);
  }

  // Returns {ok, reason, leafHash, size, root} for the API's answer to /api/v1/events/{id}?proof=1.
  async function checkEventProof(answer, eventId, index, keyTexts) {
    try {
      const pr = answer && answer.proof;
      if (!pr || answer.index !== index || pr.index !== index) throw new Error("proof is for another index");
      const leaf = fromBase64(pr.leaf);
      const stored = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leaf));
      if (stored.event_id !== eventId) throw new Error("leaf is another event");
      const lh = await leafHash(leaf);
      if (pr.leaf_hash !== hex(lh)) throw new Error("leaf hash does not match the leaf bytes");
      const root = await rootFromInclusionProof(pr.index, pr.size, lh, (pr.proof || []).map(fromHex));
      if (hex(root) !== pr.root) throw new Error("audit path does not lead to the root");
      const note = await verifiedNote(pr.note, keyTexts);
      if (note.size !== pr.size || !equal(note.root, root)) throw new Error("root is not the signed checkpoint's");
      return { ok: true, reason: "", leafHash: hex(lh), size: pr.size, root: hex(root) };
    } catch (err) {
      return { ok: false, reason: String(err && err.message ? err.message : err) };
    }
  }

  window.flightlogVerify = { checkEventProof, rootFromInclusionProof, leafHash, parseNote, hex, fromHex };
})();
