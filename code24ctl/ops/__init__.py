"""Operations: what the commands do, built on :mod:`code24ctl.cloudflare` and the config.

Each operation plans (reads, compares, decides) and then executes; none prints. :mod:`.bind`,
:mod:`.deploy` (with :mod:`.wrangler_toml`, its export), :mod:`.apply` (namespace, bind and
deploy in order) and :mod:`.doctor`. :mod:`.plan` is the shape every plan's changes share
(``+`` create, ``~`` update with typed differences, ``-`` delete).
"""
