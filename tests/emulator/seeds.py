"""The Code24 seed: one account with the five AI workers the platform runs on staging."""

from __future__ import annotations

from dataclasses import dataclass

from .state import EmulatorState

__all__ = [
    "ACCOUNT_ID",
    "ACCOUNT_TOKEN",
    "CODE24_SCRIPTS",
    "CODE24_SEED",
    "KV_CACHE_TITLE",
    "OTHER_ACCOUNT_ID",
    "USER_TOKEN",
    "ZONE_NAME",
    "Code24Seed",
    "seed_code24",
]

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
OTHER_ACCOUNT_ID = "fedcba9876543210fedcba9876543210"
USER_TOKEN = "tok_user_SECRET_4f1b2c3d4e5f60718293a4b5c6d7e8f9"
ACCOUNT_TOKEN = "tok_acct_SECRET_9e8d7c6b5a4938271605f4e3d2c1b0a9"
ZONE_NAME = "code24.dev"
ZONE_ID = "c0de24c0de24c0de24c0de24c0de24aa"
KV_CACHE_ID = "ca5e" * 8
KV_CACHE_TITLE = "code24-cache-staging"

#: The account-level Workers the config copies into the namespace, by script name.
CODE24_SCRIPTS = (
    "competitive-analysis-worker-staging",
    "market-research-worker-staging",
    "brand-worker-staging",
    "designer-worker-staging",
    "advanced-developer-worker-staging",
)

#: The multi-module one (three modules, a KV binding, a secret, a var).
MULTI_MODULE_SCRIPT = "advanced-developer-worker-staging"
MULTI_MODULE_SECRET = "OPENAI_API_KEY"
MULTI_MODULE_SECRET_VALUE = "sk-test-SECRET-value-never-returned"


def _single_module(worker: str) -> str:
    return f"""export default {{
  async fetch(request, env) {{
    const url = new URL(request.url);
    const body = request.method === "GET" ? null : await request.text();
    return Response.json({{
      worker: "{worker}",
      environment: env.ENVIRONMENT ?? null,
      method: request.method,
      path: url.pathname,
      query: url.search,
      received: body ? body.length : 0,
    }});
  }},
}};
"""


_DEV_INDEX = """import { render } from "./lib/render.js";
import prompts from "./prompts.json";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const cached = await env.CACHE.get(url.pathname);
    if (cached) {
      return new Response(cached, { headers: { "content-type": "application/json" } });
    }
    const keyed = Boolean(env.OPENAI_API_KEY);
    const answer = render("developer-worker", url.pathname, prompts.system, keyed);
    return Response.json(answer);
  },
};
"""

_DEV_RENDER = """export function render(worker, path, system, hasKey) {
  return { worker, path, system, model_configured: hasKey };
}
"""

_DEV_PROMPTS = '{"system": "You write production-ready code for Code24 customers."}\n'


@dataclass(frozen=True)
class Code24Seed:
    """Ids and secrets of the seeded Code24 world."""

    account_id: str
    user_token: str
    account_token: str
    zone_id: str
    zone_name: str
    kv_cache_id: str
    scripts: tuple[str, ...]


#: What :func:`seed_code24` creates (every id is fixed, so this is known without seeding).
CODE24_SEED = Code24Seed(
    account_id=ACCOUNT_ID,
    user_token=USER_TOKEN,
    account_token=ACCOUNT_TOKEN,
    zone_id=ZONE_ID,
    zone_name=ZONE_NAME,
    kv_cache_id=KV_CACHE_ID,
    scripts=CODE24_SCRIPTS,
)


def seed_code24(state: EmulatorState) -> Code24Seed:
    """Seed the Code24 account: tokens, zone, a KV namespace and the five account Workers.

    Also a second account without Workers for Platforms (``OTHER_ACCOUNT_ID``), which the user
    token cannot reach.
    """
    state.add_account(ACCOUNT_ID, "Code24 Platform", wfp=True)
    state.add_account(OTHER_ACCOUNT_ID, "Unrelated account", wfp=False)
    state.add_token(USER_TOKEN, account_id=ACCOUNT_ID, kind="user", token_id="0" * 31 + "1")
    state.add_token(ACCOUNT_TOKEN, account_id=ACCOUNT_ID, kind="account", token_id="0" * 31 + "2")
    state.add_zone(ZONE_NAME, ACCOUNT_ID, zone_id=ZONE_ID)
    kv_id = state.add_kv_namespace(ACCOUNT_ID, KV_CACHE_TITLE, id=KV_CACHE_ID)
    for script in CODE24_SCRIPTS:
        if script == MULTI_MODULE_SCRIPT:
            continue
        state.add_account_script(
            ACCOUNT_ID,
            script,
            {
                "worker.js": (
                    _single_module(script.removesuffix("-staging")),
                    "application/javascript+module",
                )
            },
            main_module="worker.js",
            bindings=[{"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"}],
        )
    state.add_account_script(
        ACCOUNT_ID,
        MULTI_MODULE_SCRIPT,
        {
            "index.js": (_DEV_INDEX, "application/javascript+module"),
            "lib/render.js": (_DEV_RENDER, "application/javascript+module"),
            "prompts.json": (_DEV_PROMPTS, "text/plain"),
        },
        main_module="index.js",
        bindings=[
            {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
            {"type": "kv_namespace", "name": "CACHE", "namespace_id": kv_id},
        ],
        compatibility_date="2024-11-11",
        compatibility_flags=["nodejs_compat"],
        secrets={MULTI_MODULE_SECRET: MULTI_MODULE_SECRET_VALUE},
    )
    return CODE24_SEED
