// Code24 dynamic dispatch Worker: routes a request to a user Worker in the dispatch namespace
// and makes sure the caller always gets JSON back. The rules (D1-D7) are docs/dispatch.md's.
//
// Uploaded as-is by `code24ctl deploy`: one ES module, no build step, no dependencies.
// Bindings it reads:
//   ROUTE_TABLE    json binding: {version, max_body_bytes, max_json_check_bytes, routes, workers}
//   ENVIRONMENT    plain text, echoed in X-Code24-Environment
//   PLATFORM_NAME  plain text, used to label log lines
//   DISPATCHER     the dispatch namespace: DISPATCHER.get(alias, {}, options).fetch(request),
//                  options = {limits: {cpuMs, subRequests}, outbound: {<param>: value}} as the
//                  table says (same rule as dispatch_options in code24ctl/dispatch/routing.py)
//   ANALYTICS      optional Analytics Engine dataset: one data point per request (see record)
//   CF_VERSION_METADATA  version metadata binding {id, tag, timestamp}: its id is sent in
//                  X-Code24-Dispatcher-Version on every answer (D6), so a probe can tell which
//                  version answered a Cloudflare-Workers-Version-Overrides request
//   CODE24_RECORD_KEY  `serve --runtime workerd` only (never deployed): a secret that run's
//                  runner gives this Worker alone; each record line carries it (see record)
//
// The one rule above all others: nothing escapes `fetch` as an exception. An uncaught throw
// becomes Cloudflare's HTML error page 1101, which is exactly the failure this Worker exists
// to prevent. Every path therefore ends in a JSON answer, and the outermost try/catch answers
// `internal_error` if anything below it goes wrong.

const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
const DEFAULT_MAX_JSON_CHECK_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30000;
const DEFAULT_FALLBACK_STATUS = 200;

// A client-supplied X-Request-Id is reused only when it is this tame, so it is safe to log
// and to put in headers; anything else gets a fresh id.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// RFC 9110 section 7.6.1 hop-by-hop headers: they describe one connection and must not be
// forwarded. Headers named in Connection are hop-by-hop too (handled in forwardHeaders).
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

// A client must not pick a user Worker's version: the dispatcher strips these before anything
// else (docs: workers-for-platforms/versioning/version-affinity).
const VERSION_HEADERS = new Set([
  "cloudflare-workers-version-overrides",
  "cloudflare-workers-version-key",
]);

// What the outbound Worker may be told about each call (it reads them as env.<name>).
const OUTBOUND_PARAMS = ["worker", "environment", "request_id", "route"];

// The exception a user Worker throws when it exceeds a custom limit is not documented word for
// word (docs: "the user Worker will immediately throw an exception"). A message containing one
// of these wordings (any case) is an over-limit; any other is a worker_error. Each is one public
// sources show (tests/emulator/README.md, "Over-limit wordings"): "CPU time limit" is what
// Cloudflare's own dynamic-dispatch example tests for; "exceeded resource limits" is error
// 1102's title; "too many subrequests" the subrequest limit's message. The corpus has a case for
// each, and one for a wording outside the list.
const OVER_LIMIT_WORDINGS = ["cpu time limit", "exceeded resource limits", "too many subrequests"];
// The same failure seen over HTTP: Cloudflare error 1102 as plain text.
const OVER_LIMIT_BODY = new TextEncoder().encode("error code: 1102");

const MESSAGES = {
  route_not_found: "No route matches this path.",
  bad_path: "The request path is not allowed.",
  payload_too_large: "The request body is larger than the dispatcher accepts.",
  worker_not_found: "The worker is not deployed in the namespace.",
  worker_error: "The worker failed before answering.",
  worker_timeout: "The worker did not answer in time.",
  worker_over_limit: "The worker exceeded its CPU or subrequest limit.",
  upstream_html: "The worker answered with an HTML page instead of JSON.",
  upstream_not_json: "The worker answered with something other than JSON.",
  internal_error: "The dispatcher failed unexpectedly.",
};

// The HTML sniff looks at the first SNIFF_BYTES of a body, skipping a UTF-8 byte order mark and
// ASCII whitespace, for these markers (compared case-insensitively). Same rule as probe's
// classifier (code24ctl/dispatch/classify.py), byte for byte.
const SNIFF_BYTES = 1024;
const HTML_MARKERS = ["<!doctype html", "<html"].map((m) => new TextEncoder().encode(m));

const TIMED_OUT = Symbol("timed out");

export default {
  async fetch(request, env, ctx) {
    // Filled in as the request goes; the catch-all and record() use whatever is known by then.
    const state = { requestId: null, environment: "", started: Date.now() };
    const response = await answer(request, env, state);
    // D6: every answer, fallbacks and refusals included, names the version that made it. Every
    // Response here was built by this Worker, so its headers are mutable.
    try {
      response.headers.set("X-Code24-Dispatcher-Version", dispatcherVersion(env));
    } catch {
      // Never let the label cost the answer.
    }
    record(request, response, env, state);
    return response;
  },
};

async function answer(request, env, state) {
  try {
    state.environment = envText(env, "ENVIRONMENT");
    state.requestId = pickRequestId(request.headers.get("x-request-id"));
    return await dispatch(request, env, state);
  } catch (err) {
    try {
      log(env, "internal error", state.requestId, err);
      return refusal("internal_error", 500, null, state);
    } catch {
      // Even building the envelope failed (it should not be able to): still answer JSON.
      return new Response('{"error":{"code":"internal_error"}}', {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
  }
}

async function dispatch(request, env, state) {
  const started = Date.now();
  const table = loadRouteTable(env);

  // D2, checked before routing: refuse paths that could mean something else to the
  // worker than to the router. The raw path is cut out of the request.url string, never taken
  // from `new URL()`, whose parser resolves "%2e" segments and turns "\" into "/". (workerd's
  // HTTP server already resolves literal "." / ".." segments before this code runs; checking
  // them anyway costs nothing and keeps the rule whole if that ever changes.)
  const target = splitTarget(request.url);
  if (target === null || isBadPath(target.path)) {
    return refusal("bad_path", 400, null, state);
  }

  // D1: longest prefix on a segment boundary, on the still-encoded path.
  const route = matchRoute(table.index, target.path);
  if (route === null) {
    return refusal("route_not_found", 404, null, state);
  }
  const alias = route.worker;
  state.route = route.prefix;
  state.alias = alias;
  const worker = workerSettings(table.workers[alias]);

  // D2: body size. A declared Content-Length is judged before reading anything; a body
  // without one (chunked) is read up to the limit and refused as soon as it goes over.
  let body = await boundedRequestBody(request, table.max_body_bytes);
  if (body === TOO_LARGE) {
    return refusal("payload_too_large", 413, alias, state);
  }

  // D3: forward method, body and headers, minus hop-by-hop and client X-Code24-*.
  const forwardPath = stripPrefix(target.path, route.strip);
  const url = target.origin + forwardPath + target.query;
  const headers = forwardHeaders(request.headers, state.requestId);
  const options = dispatchOptions(table, route, worker, state);
  if (request.method === "GET" || request.method === "HEAD") {
    // The Request constructor throws on a GET/HEAD body, and a client sending
    // "Content-Length: 0" on a GET is common: such a body has no meaning, so it is not sent.
    if (body instanceof ReadableStream) body.cancel().catch(() => {});
    body = null;
    headers.delete("content-length");
  }
  const controller = new AbortController();
  const forwarded = new Request(url, {
    method: request.method,
    headers,
    body,
    redirect: "manual",
    signal: controller.signal,
  });

  const meta = { alias, worker, state, started, upstreamStatus: null };

  // One deadline covers the call and the reading of whatever part of the answer the
  // dispatcher needs to judge it, so a worker that sends headers then stalls still times out.
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), worker.timeoutMs);
  });
  try {
    let response;
    try {
      // get() is lazy on Cloudflare: a missing worker only shows when fetch() throws.
      // The call sits inside the try so a get() that throws synchronously is handled alike.
      const call = (async () => env.DISPATCHER.get(alias, {}, options).fetch(forwarded))();
      call.catch(() => {}); // settled later or never awaited after a timeout; no unhandled rejection
      response = await Promise.race([call, deadline]);
    } catch (err) {
      const message = errorMessage(err);
      const reason = message.startsWith("Worker not found")
        ? "worker_not_found"
        : isOverLimitMessage(message)
          ? "worker_over_limit"
          : "worker_error";
      if (reason !== "worker_not_found") log(env, "worker threw", state.requestId, err);
      return fallback(reason, meta);
    }
    if (response === TIMED_OUT) {
      controller.abort();
      return fallback("worker_timeout", meta);
    }
    meta.upstreamStatus = response.status;
    return await judgeAnswer(request, response, table, deadline, controller, meta);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------
// The route table

// The table comes from a binding and is the same object for the life of the isolate, so it is
// checked once. A malformed table throws here and the catch-all answers internal_error: a
// broken deploy shows on every request instead of misrouting some of them.
const checkedTables = new WeakMap();

function loadRouteTable(env) {
  let raw = env.ROUTE_TABLE;
  if (typeof raw === "string") raw = JSON.parse(raw); // tolerate a text binding holding JSON
  if (raw === null || typeof raw !== "object") throw new TypeError("ROUTE_TABLE is missing");
  let table = checkedTables.get(raw);
  if (table === undefined) {
    table = checkRouteTable(raw);
    checkedTables.set(raw, table);
  }
  return table;
}

function checkRouteTable(raw) {
  if (raw.version !== 1) throw new TypeError(`ROUTE_TABLE version ${raw.version} is not 1`);
  if (!Array.isArray(raw.routes)) throw new TypeError("ROUTE_TABLE.routes is not a list");
  const workers = raw.workers ?? {};
  if (typeof workers !== "object" || Array.isArray(workers)) {
    throw new TypeError("ROUTE_TABLE.workers is not an object");
  }
  const routes = raw.routes.map((r, i) => {
    if (r === null || typeof r !== "object") throw new TypeError(`route ${i} is not an object`);
    // "" is the catch-all (a config prefix "/" is compiled to it).
    if (typeof r.prefix !== "string" || (r.prefix !== "" && !r.prefix.startsWith("/"))) {
      throw new TypeError(`route ${i}: prefix must be "" or a string starting with "/"`);
    }
    if (typeof r.worker !== "string" || r.worker === "") {
      throw new TypeError(`route ${i}: worker must be a name`);
    }
    const strip = r.strip ?? r.prefix;
    if (typeof strip !== "string") throw new TypeError(`route ${i}: strip must be a string`);
    // "/api/" and "/api" mean the same prefix; a bare "/" matches everything.
    const prefix = r.prefix.replace(/\/+$/, "");
    return { prefix, worker: r.worker, strip: strip.replace(/\/+$/, "") };
  });
  // The table is sorted already, but correctness must not depend on it: sort longest first.
  routes.sort((a, b) => b.prefix.length - a.prefix.length);
  const outboundParams = raw.outbound_params ?? [];
  if (!Array.isArray(outboundParams) || !outboundParams.every((p) => OUTBOUND_PARAMS.includes(p))) {
    throw new TypeError(`ROUTE_TABLE.outbound_params must list names from ${OUTBOUND_PARAMS}`);
  }
  // Routes by prefix, so a lookup costs the path's segments, never the table's size. Of two
  // routes with one prefix the first (longest first, stable) wins, as in a scan would.
  const index = new Map();
  for (const route of routes) if (!index.has(route.prefix)) index.set(route.prefix, route);
  return {
    routes,
    index,
    workers,
    outboundParams,
    max_body_bytes: limit(raw.max_body_bytes, DEFAULT_MAX_BODY_BYTES, "max_body_bytes"),
    max_json_check_bytes: limit(
      raw.max_json_check_bytes,
      DEFAULT_MAX_JSON_CHECK_BYTES,
      "max_json_check_bytes",
    ),
  };
}

function limit(value, dflt, name) {
  if (value === undefined || value === null) return dflt;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`ROUTE_TABLE.${name} must be a non-negative integer`);
  }
  return value;
}

function workerSettings(raw) {
  const w = raw ?? {};
  if (typeof w !== "object") throw new TypeError("worker settings are not an object");
  const timeoutMs = w.timeout_ms ?? DEFAULT_TIMEOUT_MS;
  const status = w.fallback_status ?? DEFAULT_FALLBACK_STATUS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError("timeout_ms must be a positive integer");
  }
  if (!Number.isSafeInteger(status) || status < 200 || status > 599) {
    throw new TypeError("fallback_status must be an HTTP status 200-599");
  }
  return {
    timeoutMs,
    fallback: w.fallback ?? null,
    fallbackStatus: status,
    limits: dispatchLimits(w.limits),
  };
}

// The table's {cpu_ms, subrequests} as workerd's DynamicDispatchLimits {cpuMs, subRequests}.
function dispatchLimits(raw) {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object" || Object.keys(raw).some((k) => k !== "cpu_ms" && k !== "subrequests")) {
    throw new TypeError("limits must be an object of cpu_ms, subrequests");
  }
  const limits = {};
  for (const [name, key] of [["cpu_ms", "cpuMs"], ["subrequests", "subRequests"]]) {
    const value = raw[name];
    if (value === undefined || value === null) continue;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`limits.${name} must be a positive integer`);
    }
    limits[key] = value;
  }
  return Object.keys(limits).length > 0 ? limits : null;
}

// The options of DISPATCHER.get(): the worker's limits, and the outbound parameters the table
// names with this call's values.
function dispatchOptions(table, route, worker, state) {
  const options = {};
  if (worker.limits !== null) options.limits = worker.limits;
  if (table.outboundParams.length > 0) {
    const values = {
      worker: route.worker,
      environment: state.environment,
      request_id: state.requestId,
      route: route.prefix || "/",
    };
    options.outbound = {};
    for (const name of table.outboundParams) options.outbound[name] = values[name];
  }
  return options;
}

// ---------------------------------------------------------------------------------------
// Paths

// Splits the absolute URL string workerd hands us into origin, raw path and raw query
// ("?..." or ""). Returns null when there is no "scheme://" (not an absolute URL at all).
function splitTarget(url) {
  if (typeof url !== "string") return null;
  const schemeEnd = url.indexOf("://");
  if (schemeEnd < 0) return null;
  let rest = url.slice(schemeEnd + 3);
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash); // never sent over HTTP; ignore if present
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  let pathAndQuery = authorityEnd < 0 ? "" : rest.slice(authorityEnd);
  // A URL serialiser always writes a path; an empty one can only mean the root.
  if (!pathAndQuery.startsWith("/")) pathAndQuery = "/" + pathAndQuery;
  const q = pathAndQuery.indexOf("?");
  return {
    origin: url.slice(0, schemeEnd + 3) + authority,
    path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q < 0 ? "" : pathAndQuery.slice(q),
  };
}

// A dot segment, plain or percent-encoded ("%2e" in either case), in any mix.
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

function isBadPath(path) {
  if (!path.startsWith("/")) return true; // absolute-form or otherwise odd request target
  if (path.includes("\\")) return true;
  if (/%2f|%5c/i.test(path)) return true; // encoded "/" or "\": would split differently downstream
  return path.split("/").some((segment) => DOT_SEGMENT.test(segment));
}

function matchRoute(index, path) {
  // The longest prefix on a segment boundary: the whole path, then the part before each "/"
  // from the last one down; the part before the first "/" is "", the catch-all.
  let route = index.get(path);
  let end = path.length;
  while (route === undefined && end > 0) {
    end = path.lastIndexOf("/", end - 1);
    if (end < 0) return null;
    route = index.get(path.slice(0, end));
  }
  return route ?? null;
}

function stripPrefix(path, strip) {
  let rest = path;
  if (strip !== "" && (path === strip || path.startsWith(strip + "/"))) {
    rest = path.slice(strip.length);
  }
  // The worker never sees an empty path.
  return rest.startsWith("/") ? rest : "/" + rest;
}

// ---------------------------------------------------------------------------------------
// The request

const TOO_LARGE = Symbol("too large");

async function boundedRequestBody(request, maxBytes) {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const length = Number(declared);
    if (Number.isFinite(length) && length > maxBytes) return TOO_LARGE;
    // Declared and within the limit: workerd enforces the framing, so stream it through.
    return request.body;
  }
  if (request.body === null) return null;
  // No declared length (chunked): read at most maxBytes + 1 to decide, never more.
  const { chunks, size, done, reader } = await readUpTo(request.body, maxBytes + 1);
  if (!done) {
    reader.cancel().catch(() => {});
    return TOO_LARGE;
  }
  return concat(chunks, size);
}

function forwardHeaders(incoming, requestId) {
  const dropped = connectionNamed(incoming);
  const headers = new Headers();
  for (const [name, value] of incoming) {
    // Headers iterates lowercased names.
    if (HOP_BY_HOP.has(name) || dropped.has(name)) continue;
    // Clients cannot forge dispatcher metadata, nor choose the Worker's version.
    if (name.startsWith("x-code24-") || VERSION_HEADERS.has(name)) continue;
    headers.append(name, value);
  }
  headers.set("X-Code24-Request-Id", requestId);
  return headers;
}

// The header names a Connection header lists: hop-by-hop for this hop only.
function connectionNamed(headers) {
  return new Set(
    (headers.get("connection") ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== ""),
  );
}

function pickRequestId(clientId) {
  if (clientId !== null && SANE_REQUEST_ID.test(clientId)) return clientId;
  return crypto.randomUUID().replaceAll("-", "");
}

// ---------------------------------------------------------------------------------------
// The answer (D4)

async function judgeAnswer(request, response, table, deadline, controller, meta) {
  const status = response.status;
  if (status === 204 || status === 304) return passThrough(response, response.body, meta);

  const mediaType = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();

  if (isJsonType(mediaType)) {
    // A HEAD answer has no body to check: the headers are all there is.
    if (request.method === "HEAD") return passThrough(response, response.body, meta);
    const maxCheck = table.max_json_check_bytes;
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > maxCheck) {
      // Too big to check: stream through untouched, without reading a byte.
      return passThrough(response, response.body, meta);
    }
    const read = await raceDeadline(readUpTo(response.body, maxCheck + 1), deadline);
    if (read === TIMED_OUT) return timedOutWhileReading(response, controller, meta);
    if (!read.done) {
      // Turned out bigger than the check limit: send what was read, then the rest, as it comes.
      return passThrough(response, prefixedStream(read.chunks, read.reader), meta);
    }
    const bytes = concat(read.chunks, read.size);
    // HTML wins over the header: a status page labelled application/json is still HTML.
    if (looksLikeHtml(bytes)) return fallback("upstream_html", meta);
    if (!parsesAsJson(bytes)) return fallback("upstream_not_json", meta);
    return passThrough(response, bytes, meta);
  }

  if (mediaType === "text/html" || mediaType === "application/xhtml+xml") {
    discard(response);
    return fallback("upstream_html", meta);
  }

  // Anything else is a fallback either way; sniff the start only to name the reason right
  // (HTML served as text/plain is still HTML).
  const start = await raceDeadline(readUpTo(response.body, SNIFF_BYTES), deadline);
  if (start === TIMED_OUT) return timedOutWhileReading(response, controller, meta);
  start.reader?.cancel().catch(() => {});
  const sniffed = concat(start.chunks, start.size);
  if (isOverLimitPage(sniffed)) return fallback("worker_over_limit", meta);
  return fallback(looksLikeHtml(sniffed) ? "upstream_html" : "upstream_not_json", meta);
}

function timedOutWhileReading(response, controller, meta) {
  controller.abort();
  discard(response);
  meta.upstreamStatus = null; // it never finished answering
  return fallback("worker_timeout", meta);
}

function isJsonType(mediaType) {
  return mediaType === "application/json" || mediaType.endsWith("+json");
}

// Whether a body's first bytes open an HTML document: skip any byte of a UTF-8 BOM, then ASCII
// whitespace, then compare with the markers ignoring ASCII case.
function looksLikeHtml(bytes) {
  const end = Math.min(bytes.byteLength, SNIFF_BYTES);
  let i = 0;
  while (i < end && (bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)) i++;
  while (i < end && isAsciiSpace(bytes[i])) i++;
  return HTML_MARKERS.some((marker) => {
    if (end - i < marker.length) return false;
    for (let k = 0; k < marker.length; k++) {
      const b = bytes[i + k];
      const lower = b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
      if (lower !== marker[k]) return false;
    }
    return true;
  });
}

// Cloudflare's plain-text error 1102 ("error code: 1102"), after leading ASCII whitespace.
function isOverLimitMessage(message) {
  const lower = message.toLowerCase();
  return OVER_LIMIT_WORDINGS.some((wording) => lower.includes(wording));
}

function isOverLimitPage(bytes) {
  let i = 0;
  while (i < bytes.byteLength && isAsciiSpace(bytes[i])) i++;
  if (bytes.byteLength - i < OVER_LIMIT_BODY.length) return false;
  return OVER_LIMIT_BODY.every((b, k) => bytes[i + k] === b);
}

function isAsciiSpace(b) {
  // space, \t, \n, \v, \f, \r: what Python's bytes.strip() removes
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

// RFC 8259 JSON: UTF-8 only, a byte order mark is not JSON (ignoreBOM keeps it in the text so
// JSON.parse refuses it, as Python's json.loads does). Empty or blank bodies do not parse.
function parsesAsJson(bytes) {
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}

// Reads chunks until at least `limit` bytes are in hand or the stream ends (`done` says which).
// The reader is handed back so the rest of the body can still be streamed or cancelled.
async function readUpTo(body, limit) {
  if (body === null) return { chunks: [], size: 0, done: true, reader: null };
  const reader = body.getReader();
  const chunks = [];
  let size = 0;
  while (size < limit) {
    const { value, done } = await reader.read();
    if (done) return { chunks, size, done: true, reader };
    chunks.push(value);
    size += value.byteLength;
  }
  return { chunks, size, done: false, reader };
}

function prefixedStream(chunks, reader) {
  let i = 0;
  return new ReadableStream({
    async pull(controller) {
      if (i < chunks.length) {
        controller.enqueue(chunks[i++]);
        return;
      }
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

function concat(chunks, size) {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function raceDeadline(promise, deadline) {
  promise.catch(() => {});
  return Promise.race([promise, deadline]);
}

function discard(response) {
  if (response.body !== null) response.body.cancel().catch(() => {});
}

// ---------------------------------------------------------------------------------------
// Building answers

function passThrough(response, body, meta) {
  const dropped = connectionNamed(response.headers);
  const headers = new Headers();
  for (const [name, value] of response.headers) {
    if (HOP_BY_HOP.has(name) || dropped.has(name)) continue;
    // Only the dispatcher sets X-Code24-* on the way out.
    if (name.startsWith("x-code24-")) continue;
    // A body the dispatcher re-assembled gets its length from workerd, not from the worker.
    if (name === "content-length" && body !== response.body) continue;
    headers.append(name, value);
  }
  setDispatchHeaders(headers, meta, null);
  meta.state.bodyBytes = bodySize(body, response.headers);
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

// D5: the worker's own fallback JSON if it has one, else the error envelope.
function fallback(reason, meta) {
  const headers = new Headers({ "content-type": "application/json" });
  setDispatchHeaders(headers, meta, reason);
  const { worker } = meta;
  if (worker.fallback !== null) {
    const text = JSON.stringify(worker.fallback);
    meta.state.bodyBytes = utf8Length(text);
    return new Response(text, { status: worker.fallbackStatus, headers });
  }
  const status = reason === "worker_timeout" ? 504 : reason === "worker_over_limit" ? 500 : 502;
  const text = JSON.stringify(envelope(reason, meta.alias, meta.state.requestId));
  meta.state.bodyBytes = utf8Length(text);
  return new Response(text, { status, headers });
}

// D6: metadata on every dispatched answer.
function setDispatchHeaders(headers, meta, reason) {
  headers.set("X-Code24-Worker", meta.alias);
  headers.set("X-Code24-Environment", meta.state.environment);
  headers.set("X-Code24-Request-Id", meta.state.requestId);
  headers.set("X-Code24-Fallback", reason === null ? "false" : "true");
  if (reason !== null) headers.set("X-Code24-Fallback-Reason", reason);
  if (meta.upstreamStatus !== null) headers.set("X-Code24-Upstream-Status", String(meta.upstreamStatus));
  headers.set("X-Code24-Dispatch-Ms", String(Math.max(0, Date.now() - meta.started)));
}

// Answers the dispatcher makes without calling a worker: 400, 404, 413 and 500.
function refusal(code, status, alias, state) {
  const requestId = state.requestId ?? pickRequestId(null);
  const text = JSON.stringify(envelope(code, alias, requestId));
  state.refusal = code;
  state.bodyBytes = utf8Length(text);
  return new Response(text, {
    status,
    headers: {
      "content-type": "application/json",
      "X-Code24-Request-Id": requestId,
      "X-Code24-Environment": state.environment,
    },
  });
}

function envelope(code, alias, requestId) {
  return { error: { code, message: MESSAGES[code], worker: alias, request_id: requestId } };
}

// ---------------------------------------------------------------------------------------
// Small helpers

// The version id of the version metadata binding; "unknown" without one (an upload that forgot
// it), never a value a client could have sent.
function dispatcherVersion(env) {
  const id = env?.CF_VERSION_METADATA?.id;
  return typeof id === "string" && id !== "" ? id : "unknown";
}

function envText(env, name) {
  const value = env?.[name];
  return typeof value === "string" ? value : "";
}

function errorMessage(err) {
  try {
    return String(err?.message ?? err);
  } catch {
    return "";
  }
}

function log(env, what, requestId, err) {
  try {
    const platform = envText(env, "PLATFORM_NAME") || "Code24";
    console.error(`[${platform} dispatcher] ${what} (request ${requestId}): ${errorMessage(err)}`);
  } catch {
    // Logging must never be the thing that fails.
  }
}

// ---------------------------------------------------------------------------------------
// Recording: one Analytics Engine data point and one structured log line per request
//
// Runs after the answer is built and before it is returned: writeDataPoint is a synchronous,
// fire-and-forget call (it returns nothing to await), so it costs no I/O on the response path.
// A failure to record is swallowed and logged; it never changes the answer.
//
// Data point (read back by `code24ctl stats`; keep the positions in step with
// code24ctl/cloudflare/analytics.py):
//   index1  worker alias ("" when no route matched)
//   blob1   environment      blob2 route prefix ("" = catch-all or none)   blob3 method
//   blob4   fallback reason ("" when the worker's own answer passed; else the reason, including
//           the dispatcher's refusals: route_not_found, bad_path, payload_too_large, ...)
//   blob5   status class ("2xx" ... "5xx")
//   double1 status   double2 upstream status (0 = none)   double3 dispatch ms
//   double4 body bytes of the answer (-1 = streamed through without a declared length)
//
// Log line (read by `code24ctl tail`): console.log of one JSON object {"code24": "request", ...}.
// Under `serve --runtime workerd` the user Workers print to the same stream as this Worker, so a
// line of this shape proves nothing by itself: there the line also carries "record_key", the
// CODE24_RECORD_KEY binding that run's runner gives this Worker alone, and the runner takes
// only lines with the key as records (code24ctl/serve/workerd/runner.mjs). Deployed, there is
// no such binding and no such field.

function record(request, response, env, state) {
  try {
    const headers = response.headers;
    const reason = headers.get("x-code24-fallback-reason") ?? state.refusal ?? "";
    const fields = {
      code24: "request",
      request_id: headers.get("x-code24-request-id") ?? state.requestId ?? "",
      method: request.method,
      path: pathOf(request.url),
      environment: state.environment,
      worker: headers.get("x-code24-worker") ?? state.alias ?? "",
      route: state.route ?? "",
      status: response.status,
      upstream_status: Number(headers.get("x-code24-upstream-status") ?? 0),
      fallback_reason: reason,
      dispatch_ms: Number(headers.get("x-code24-dispatch-ms") ?? Date.now() - state.started),
      body_bytes: state.bodyBytes ?? -1,
    };
    const key = envText(env, "CODE24_RECORD_KEY");
    if (key !== "") fields.record_key = key;
    console.log(JSON.stringify(fields));
    const dataset = env?.ANALYTICS;
    if (dataset && typeof dataset.writeDataPoint === "function") {
      dataset.writeDataPoint({
        indexes: [fields.worker],
        blobs: [
          fields.environment,
          fields.route,
          fields.method,
          fields.fallback_reason,
          `${Math.floor(fields.status / 100)}xx`,
        ],
        doubles: [fields.status, fields.upstream_status, fields.dispatch_ms, fields.body_bytes],
      });
    }
  } catch (err) {
    log(env, "recording failed", state.requestId, err);
  }
}

// The path of the request, without the query (which may carry tokens).
function pathOf(url) {
  const target = splitTarget(url);
  return target === null ? "" : target.path;
}

function bodySize(body, upstreamHeaders) {
  if (body instanceof Uint8Array) return body.byteLength;
  if (body === null) return 0;
  const declared = Number(upstreamHeaders.get("content-length") ?? NaN);
  return Number.isSafeInteger(declared) ? declared : -1;
}

function utf8Length(text) {
  return new TextEncoder().encode(text).byteLength;
}
