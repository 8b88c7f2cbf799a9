"""``serve --runtime workerd``: the deployed ``dispatcher.js`` and the workers' own code, run
in one workerd process through miniflare (Node.js).

:mod:`.node` finds Node.js and the pinned miniflare (installing it once), :mod:`.plan` decides
what runs, :mod:`.bindings` maps a worker's own bindings onto what miniflare emulates,
:mod:`.account` reads production's code for ``--from-account``, :mod:`.runtime` supervises the
Node.js side (``runner.mjs``).
"""
