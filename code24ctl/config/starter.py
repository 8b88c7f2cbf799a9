"""The commented starter ``namespaces.yaml`` that ``code24ctl init`` writes."""

from __future__ import annotations

from pathlib import Path

from code24ctl.errors import UsageError

STARTER = """\
# namespaces.yaml: the platform code24ctl manages (reference: README.md, "Configuration").
#
# One dispatcher Worker per environment sits on the routes below and forwards each request to a
# worker held in the environment's dispatch namespace, always answering JSON.
# `${VAR}` expands from the process environment; `{env}` expands to the environment's name.

platform: my-platform
account_id: ${CLOUDFLARE_ACCOUNT_ID}      # or the account id itself
compatibility_date: "2025-06-01"
# The environment used without --env or CODE24_ENV (`code24ctl --help` shows it).
default_env: staging

# Each worker: an alias, and where its code comes from: `script` (an account Worker to copy
# into the namespace) or `path` (a module file or folder on disk).
workers:
  hello:
    script: hello-worker-{env}
    timeout_ms: 30000
    # What callers get when the worker fails or answers HTML (plain JSON):
    fallback: {status: degraded, message: hello is temporarily unavailable}

# Each route: a path prefix and the worker that answers it. `probe` is the sample request
# `code24ctl probe` sends to check that the route answers JSON.
routes:
  - prefix: /api/hello
    worker: hello
    probe:
      method: POST
      path: /api/hello/greet
      json: {name: "world"}

environments:
  staging:
    namespace: my-workers-staging          # the dispatch namespace
    dispatcher: my-dispatcher-staging      # the dispatcher Worker
    zone: example.com
    routes:
      - staging.example.com/api/*
    base_url: https://staging.example.com
    vars:
      ENVIRONMENT: staging
  # A local environment is served by `code24ctl serve` in front of local upstreams.
  local:
    base_url: http://127.0.0.1:8787
    upstreams:
      hello: http://127.0.0.1:8788
"""


def write_starter(path: str) -> Path:
    """Write the starter config to ``path``; an existing file is never overwritten (exit 2)."""
    target = Path(path)
    try:
        with target.open("x", encoding="utf-8") as handle:
            handle.write(STARTER)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists; nothing was written",
            hint="edit it, or pass --config OTHER_PATH to write a new one elsewhere",
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return target
