"""Names shared by the core and the CLI, in a module light enough for ``--help`` to import."""

DEFAULT_CONFIG_PATH = "namespaces.yaml"
CONFIG_ENV_VAR = "CODE24_CONFIG"
ENVIRONMENT_ENV_VAR = "CODE24_ENV"
ACCOUNT_ENV_VAR = "CLOUDFLARE_ACCOUNT_ID"
TOKEN_ENV_VAR = "CLOUDFLARE_API_TOKEN"
BASE_URL_ENV_VAR = "CLOUDFLARE_BASE_URL"
DEBUG_ENV_VAR = "CODE24_DEBUG"

# serve listens on loopback unless --host says otherwise: the workers behind it trust it.
SERVE_DEFAULT_HOST = "127.0.0.1"

# How many workers bind, unbind and apply handle at once (--concurrency), and the most allowed.
DEFAULT_WORKER_CONCURRENCY = 4
MAX_WORKER_CONCURRENCY = 32
# How many requests probe has in flight at once (probe --concurrency).
DEFAULT_PROBE_CONCURRENCY = 16
# How long a probe with a dispatcher version waits, at most, for the override to take effect
# (probe --wait, deploy --wait). Cloudflare says "up to a couple of seconds" after a deployment
# change (docs: versions-and-deployments/version-overrides); the exact bound is not published.
DEFAULT_VERSION_WAIT_S = 10.0
