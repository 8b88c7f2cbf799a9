// Stand-in for the dispatch namespace binding (env.DISPATCHER) inside miniflare.
//
// Miniflare's own `dispatchNamespaces` option proxies to Cloudflare, so it is useless offline.
// Instead the dispatcher gets DISPATCHER as a *wrapped binding*: workerd imports this module into
// the dispatcher's isolate and calls the default export with this module's own env, which holds
// a service binding per user worker plus ALIASES (alias -> binding name).
//
// Like the real namespace, get() is lazy: it never throws, and a missing worker only shows when
// fetch() throws an Error whose message starts with "Worker not found".
export default function makeNamespace(env) {
  return {
    get(name) {
      const binding = Object.hasOwn(env.ALIASES, name) ? env.ALIASES[name] : undefined;
      if (binding !== undefined) return env[binding];
      return {
        async fetch() {
          throw new Error("Worker not found.");
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
