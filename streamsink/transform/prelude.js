// streamsink's wrapper around a user's handler, loaded before the user's code.
(function () {
  var g = globalThis;
  ["WebAssembly", "Atomics", "fetch", "require", "process", "XMLHttpRequest", "importScripts",
   // Binary buffers live outside the V8 heap, so the memory limit would not cover them.
   "ArrayBuffer", "SharedArrayBuffer", "DataView", "Int8Array", "Uint8Array",
   "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
   "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
  ].forEach(function (n) { try { delete g[n]; } catch (e) {} });
  // mini-racer installs these with `var` (not deletable): disable them.
  g.setTimeout = undefined; g.clearTimeout = undefined; g.__timer_manager = undefined;
  var noop = function () {};
  g.console = { log: noop, info: noop, warn: noop, error: noop, debug: noop };
})();
var __streamsink_output_mark = "streamsink-output: ";

// Before JSON.stringify builds the result's text: its UTF-8 size and depth, so
// that a result too large or too deep fails before its text exists. A first
// pass adds a lower bound of each string's size (its length: a string built by
// concatenation is not flattened); when that total could grow past the limit
// with escapes and number digits, a second pass measures exactly. Throws
// "<mark>too-large-at-least: N", "<mark>too-deep: PATH" or
// "<mark>bad-time: PATH: VALUE"; returns false for a cycle (JSON.stringify
// then reports it).
var __streamsink_measure = (function () {
  var mark = "streamsink-output: ";
  var PLAIN = /[\x20\x21\x23-\x5b\x5d-\x7f]+/g;  // characters JSON writes as one byte
  var size, maxBytes, maxDepth, path, stack, exact;
  function tooLarge() { throw new Error(mark + "too-large-at-least: " + size); }
  function strSize(s) {  // UTF-8 bytes of JSON.stringify(s) (a lone surrogate counts 4, not 6)
    if (!exact) return s.length + 2;
    var r = s.replace(PLAIN, ""), n = s.length + 2;
    for (var i = 0; i < r.length; i++) {
      var c = r.charCodeAt(i);
      if (c < 0x20) n += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 1 : 5;
      else if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) n += 1;  // also " and \\
      else n += 2;
    }
    return n;
  }
  // The common case: sizes only. Past maxDepth it throws DEEP and the caller
  // walks again with walk(), which tracks the path and the stack for the message.
  var DEEP = {};
  function fast(v, key, d) {  // false when JSON.stringify leaves the value out
    if (v !== null && typeof v === "object") {
      if (typeof v.toJSON === "function") v = v.toJSON(String(key));
      else if (v instanceof Number) v = Number(v);
      else if (v instanceof String) v = String(v);
      else if (v instanceof Boolean) v = v.valueOf();
    }
    var t = typeof v;
    if (t === "string") {
      if (d > maxDepth) throw DEEP;
      size += strSize(v);
      if (size > maxBytes) tooLarge();
      return true;
    }
    if (v === null || t === "number" || t === "boolean" || t === "bigint") {
      if (d > maxDepth) throw DEEP;
      if (!exact || t === "bigint") size += 1;
      else if (t === "number") size += isFinite(v) ? String(v).length : 4;
      else size += v === null || v === true ? 4 : 5;
      return true;
    }
    if (t !== "object") return false;  // undefined, function, symbol
    if (d > maxDepth) throw DEEP;
    size += 2;
    var i, n, m = 0;
    if (Array.isArray(v)) {
      for (i = 0, n = v.length; i < n; i++) {
        if (!fast(v[i], i, d + 1)) size += 4;  // null
      }
      m = n;
    } else {
      var keys = Object.keys(v);
      for (i = 0, n = keys.length; i < n; i++) {
        var k = keys[i];
        if (fast(v[k], k, d + 1)) { size += strSize(k) + 1; m++; }
      }
    }
    if (m > 1) size += m - 1;  // commas
    if (size > maxBytes) tooLarge();
    return true;
  }
  function walk(v, key, d) {  // false when JSON.stringify leaves the value out
    if (v !== null && typeof v === "object") {
      if (typeof v.toJSON === "function") v = v.toJSON(key);
      else if (v instanceof Number) v = Number(v);
      else if (v instanceof String) v = String(v);
      else if (v instanceof Boolean) v = v.valueOf();
    }
    var t = typeof v;
    if (t === "string") {
      if (d > maxDepth) deep(v);
      size += strSize(v);
      if (size > maxBytes) tooLarge();
      return true;
    }
    if (v === null || t === "number" || t === "boolean" || t === "bigint") {
      if (d > maxDepth) deep(v);
      if (!exact || t === "bigint") size += 1;
      else if (t === "number") size += isFinite(v) ? String(v).length : 4;
      else size += v === null || v === true ? 4 : 5;
      return true;
    }
    if (t !== "object") return false;  // undefined, function, symbol
    if (d > maxDepth) deep(v);
    stack.push(v);
    size += 2;
    var i, n, m = 0;
    if (Array.isArray(v)) {
      for (i = 0, n = v.length; i < n; i++) {
        path.push(i);
        if (!walk(v[i], String(i), d + 1)) size += 4;  // null
        path.pop();
      }
      m = n;
    } else {
      var keys = Object.keys(v);
      for (i = 0, n = keys.length; i < n; i++) {
        var k = keys[i];
        path.push(k);
        if (walk(v[k], k, d + 1)) { size += strSize(k) + 1; m++; }
        path.pop();
      }
    }
    if (m > 1) size += m - 1;  // commas
    stack.pop();
    if (size > maxBytes) tooLarge();
    return true;
  }
  function deep(v) {  // v lies maxDepth + 1 levels deep: a cycle, or too deep
    if (typeof v === "object") stack.push(v);
    for (var i = 0; i < stack.length; i++) {
      if (stack.indexOf(stack[i]) !== i) throw cycle;
    }
    var shown = "";
    for (var j = 0; j < path.length && j < 4; j++) {
      shown += typeof path[j] === "number" ? "[" + path[j] + "]" : (j ? "." : "") + path[j];
    }
    if (path.length > 4) shown += "...";
    throw new Error(mark + "too-deep: " + shown);
  }
  var cycle = {};
  function badTime(where, v) {
    var bad = (typeof v === "number" && !isFinite(v)) ||
      (v instanceof Date && isNaN(v.getTime()));
    if (bad) throw new Error(mark + "bad-time: " + where + ": " + String(v));
  }
  function times(out) {  // NaN and Infinity would silently become null ("now")
    var spans = out !== null && typeof out === "object" ? out.spans : null;
    if (!Array.isArray(spans)) return;
    for (var i = 0; i < spans.length; i++) {
      var s = spans[i];
      if (s === null || typeof s !== "object") continue;
      badTime("spans[" + i + "].startTime", s.startTime);
      badTime("spans[" + i + "].endTime", s.endTime);
      var evs = s.events;
      if (!Array.isArray(evs)) continue;
      for (var j = 0; j < evs.length; j++) {
        if (evs[j] !== null && typeof evs[j] === "object") {
          badTime("spans[" + i + "].events[" + j + "].time", evs[j].time);
        }
      }
    }
  }
  return function (out, limitBytes, limitDepth) {
    maxBytes = limitBytes; maxDepth = limitDepth;
    times(out);
    try {
      for (exact = false; ; exact = true) {
        size = 0;
        try { fast(out, "", 0); } catch (e) {
          if (e !== DEEP) throw e;
          size = 0; path = []; stack = [];
          walk(out, "", 0);  // throws too-deep (or cycle) with the path
        }
        // JSON writes at most 6 bytes for a character counted as 1, and a number
        // counted as 1 byte in at most 24.
        if (exact || size * 24 <= maxBytes) break;
      }
    } catch (e) {
      if (e === cycle) return false;
      throw e;
    } finally { path = stack = null; }
    return true;
  };
})();

// The exact UTF-8 size of a JSON text (lone surrogates are escaped by JSON.stringify).
var __streamsink_utf8_size = function (s) {
  var n = s.length;
  for (var i = 0; i < s.length; i++) {
    var c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
  }
  return n;
};

var __streamsink_run = function (text, maxBytes, maxDepth) {
  var mark = __streamsink_output_mark;
  var input = JSON.parse(text), evs = input.events;
  for (var i = 0; i < evs.length; i++) {
    var p = evs[i].payload;
    if (typeof p === "string") { try { evs[i].payload = JSON.parse(p); } catch (e) {} }
  }
  var out = handler(input);
  if (out !== null && typeof out === "object" && typeof out.then === "function") {
    throw new Error(mark + "the handler returned a Promise; it must return its result synchronously");
  }
  __streamsink_measure(out, maxBytes, maxDepth);
  var s;
  try { s = JSON.stringify({ r: out }); }
  catch (e) { throw new Error(mark + "not JSON-serialisable: " + e.message); }
  // The text is {"r":RESULT}; its size is checked exactly before it leaves V8.
  if (s.length - 6 > maxBytes / 3) {
    var size = s.length - 6 > maxBytes ? s.length - 6 : __streamsink_utf8_size(s) - 6;
    if (size > maxBytes) throw new Error(mark + "too-large: " + size);
  }
  return s;
};
//# sourceURL=streamsink.js
