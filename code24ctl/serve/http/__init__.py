"""serve's own HTTP code: the upstream client pool and the uvicorn protocol subclass.

Hand-written where a library measured too slow; README.md here names the benchmark.
"""
