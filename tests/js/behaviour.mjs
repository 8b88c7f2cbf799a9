// One user worker module for every conformance behaviour, configured by the json binding
// BEHAVIOUR (the `workers:` entry of a case in tests/contract/conformance/cases.yaml):
//   echo      200 JSON describing the request the worker received
//   json      {status, json, content_type, headers}
//   raw       {status, content_type (absent: no Content-Type at all), body}
//   big_json  {bytes}: a valid JSON document of exactly that many bytes ({"pad":"aaa..."});
//             with stream: true (JS-only tests) it is sent without a Content-Length
//   slow      {delay_ms, then}: wait, then behave like `then`
//   throw     fail without answering
// JS-only (tests/contract/test_dispatcher_js.py, not the corpus):
//   stall_body  {delay_ms, content_type, body}: headers and the first byte at once, the rest
//               after delay_ms (a worker that answers, then hangs)
export default {
  async fetch(request, env) {
    return behave(env.BEHAVIOUR, request);
  },
};

async function behave(cfg, request) {
  switch (cfg.behaviour) {
    case "echo":
      return echo(request);
    case "json":
      return new Response(JSON.stringify(cfg.json), {
        status: cfg.status ?? 200,
        headers: { ...(cfg.headers ?? {}), "content-type": cfg.content_type ?? "application/json" },
      });
    case "raw": {
      const headers = new Headers(cfg.headers ?? {});
      if (cfg.content_type !== undefined && cfg.content_type !== null) {
        headers.set("content-type", cfg.content_type);
      }
      // Bytes, not a string: a string body would get "text/plain;charset=UTF-8" added.
      const body = cfg.body ? new TextEncoder().encode(cfg.body) : null;
      return new Response(body, { status: cfg.status ?? 200, headers });
    }
    case "big_json":
      return bigJson(cfg.bytes, cfg.stream === true);
    case "slow":
      await new Promise((resolve) => setTimeout(resolve, cfg.delay_ms));
      return behave(cfg.then, request);
    case "throw":
      throw new Error("boom");
    case "stall_body":
      return stallBody(cfg);
    default:
      throw new Error(`unknown behaviour ${cfg.behaviour}`);
  }
}

async function echo(request) {
  // The raw path and query as the worker received them, read from the URL string.
  const url = request.url;
  const afterScheme = url.indexOf("://") + 3;
  const slash = url.indexOf("/", afterScheme);
  const pathAndQuery = slash < 0 ? "/" : url.slice(slash);
  const q = pathAndQuery.indexOf("?");
  const bytes = new Uint8Array(await request.arrayBuffer());
  const headers = {};
  for (const [name, value] of request.headers) headers[name] = value;
  return Response.json({
    method: request.method,
    path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q < 0 ? "" : pathAndQuery.slice(q + 1),
    headers,
    body: new TextDecoder().decode(bytes),
    body_length: bytes.byteLength,
  });
}

function bigJson(bytes, stream) {
  const head = '{"pad":"';
  const tail = '"}';
  const padding = bytes - head.length - tail.length;
  if (padding < 0) throw new Error(`big_json needs at least ${head.length + tail.length} bytes`);
  const encoder = new TextEncoder();
  const headers = { "content-type": "application/json" };
  if (!stream) {
    return new Response(encoder.encode(head + "a".repeat(padding) + tail), { headers });
  }
  // Sent in 16 KiB pieces with no declared length.
  const piece = 16 * 1024;
  let remaining = padding;
  let started = false;
  const body = new ReadableStream({
    pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(head));
      } else if (remaining > 0) {
        const n = Math.min(piece, remaining);
        remaining -= n;
        controller.enqueue(encoder.encode("a".repeat(n)));
      } else {
        controller.enqueue(encoder.encode(tail));
        controller.close();
      }
    },
  });
  return new Response(body, { headers });
}

function stallBody(cfg) {
  const bytes = new TextEncoder().encode(cfg.body);
  const body = new ReadableStream({
    async start(controller) {
      controller.enqueue(bytes.subarray(0, 1));
      await new Promise((resolve) => setTimeout(resolve, cfg.delay_ms));
      controller.enqueue(bytes.subarray(1));
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": cfg.content_type } });
}
