"""Corpus World: drivers the harness owns (touch a service) and bookkeeping methods (do not)."""

import time

from harness import trace
from harness.drivers import GatewayClient


class World:
    def __init__(self, backend):
        self.backend = backend
        self.gateway = GatewayClient(backend.gateway_url)
        self.marks = {}
        self.last_error = None

    def start_cluster(self, workers):
        trace.touch("backend", "start")
        self.backend.start(workers)

    def kill_worker(self, count):
        trace.touch("fault", "kill")
        self.backend.kill(count)

    def mark(self, name):
        self.marks[name] = time.time()
