"""``code24ctl probe``: send each route's sample request and judge the answer.

:mod:`.runner` plans and runs the probe (verdicts come from :mod:`code24ctl.dispatch.classify`,
the dispatcher's own classifier); :mod:`.junit` writes its report for CI.
"""
