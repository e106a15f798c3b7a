"""The worker: serves ONNX model versions over the Open Inference Protocol (V2).

Atomic hot-swap, a memory budget, registration with the gateway and a graceful drain on SIGTERM.
Run it with ``python -m sut.worker``.
"""

from sut.worker.app import WorkerConfig, WorkerRuntime, create_app

__all__ = ["WorkerConfig", "WorkerRuntime", "create_app"]
