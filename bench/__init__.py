"""ltx-jupyter's benchmarks: ``python -m bench.run`` (``--quick`` for the CI smoke version).

- :mod:`bench.clients`: our ``QueueClient`` against ``fal-client`` on the same local server.
- :mod:`bench.server_side`: the local server's status streams, poll rate and log streaming.
- :mod:`bench.magic`: the ``%%ltx`` magic: return time, notebook bytes, comm messages.
"""
