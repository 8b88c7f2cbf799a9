// Stand-in for the dispatch namespace binding (env.DISPATCHER) inside miniflare.
//
// Miniflare's own `dispatchNamespaces` option proxies to Cloudflare, so it is useless offline.
// Instead the dispatcher gets DISPATCHER as a *wrapped binding*: workerd imports this module into
// the dispatcher's isolate and calls the default export with this module's own env, which holds
// a service binding per user worker plus ALIASES (alias -> binding name) and OVER_LIMIT (aliases
// that exceed their limits).
//
// Like the real namespace, get() is lazy: it never throws, and a missing worker only shows when
// fetch() throws an Error whose message starts with "Worker not found".
//
// get(name, args, options) records the options it was given (workerd's DynamicDispatchOptions:
// {limits: {cpuMs, subRequests}, outbound: {<param>: value}}): the answer of the user worker
// carries them as the header X-Shim-Dispatch-Options (JSON), so a case can assert what the
// user worker's limits and the outbound Worker's env would be.
//
// An alias in OVER_LIMIT (alias -> message) throws what a user Worker over its custom limit
// throws ("the user Worker will immediately throw an exception", custom-limits docs): the case's
// message, or by default error 1102's wordings (the exact message is not documented).
const OPTIONS_HEADER = "X-Shim-Dispatch-Options";

export default function makeNamespace(env) {
  return {
    get(name, args, options) {
      const recorded = JSON.stringify(options ?? null);
      const overLimit = env.OVER_LIMIT ?? {};
      if (Object.hasOwn(overLimit, name)) {
        const message =
          overLimit[name] ?? "Worker exceeded resource limits: exceeded CPU time limit.";
        return {
          async fetch() {
            throw new Error(message);
          },
        };
      }
      const binding = Object.hasOwn(env.ALIASES, name) ? env.ALIASES[name] : undefined;
      if (binding === undefined) {
        return {
          async fetch() {
            throw new Error("Worker not found.");
          },
        };
      }
      return {
        async fetch(request) {
          const answer = await env[binding].fetch(request);
          const headers = new Headers(answer.headers);
          headers.set(OPTIONS_HEADER, recorded);
          return new Response(answer.body, {
            status: answer.status,
            statusText: answer.statusText,
            headers,
          });
        },
      };
    },
  };
}

// Stand-in for an Analytics Engine dataset binding (env.ANALYTICS), also a wrapped binding:
// miniflare's own dataset binding keeps nothing a test can read. MODE "record" prints each data
// point on workerd's stdout behind DATA_POINT_MARKER (run_corpus.mjs collects them per SETUP);
// MODE "throw" makes writeDataPoint throw, to show a failing dataset changes no answer.
const DATA_POINT_MARKER = "CODE24_TEST_DATA_POINT ";

export function analyticsDataset(env) {
  return {
    writeDataPoint(point) {
      if (env.MODE === "throw") throw new Error("Analytics Engine is unavailable (test double)");
      console.log(DATA_POINT_MARKER + JSON.stringify({ setup: env.SETUP, point: point ?? null }));
    },
  };
}
