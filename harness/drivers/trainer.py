"""The trainer driver: the drift monitor's verdicts and its retraining runs, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from harness import trace


class TrainerError(RuntimeError):
    """The trainer did not answer what was asked; the message has the status and the error."""


class TrainerClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def drift(self, model: str) -> dict[str, Any] | None:
        """The latest drift verdict for ``model``; None while the trainer has judged nothing yet."""
        answer = self._get(f"/drift/{model}", allow_404=True)
        return answer if isinstance(answer, dict) else None

    def runs(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every retraining run the trainer recorded (running, completed, rejected, failed)."""
        answer = self._get("/runs", params={"model": model} if model else None)
        if not isinstance(answer, list):
            raise TrainerError(f"GET /runs answered {answer!r}, expected a list")
        return answer

    def live(self) -> bool:
        try:
            return self._get("/v2/health/live") is not None
        except (TrainerError, httpx.HTTPError):
            return False

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, *, params: dict[str, str] | None = None, allow_404: bool = False) -> Any:
        trace.touch("http", f"GET trainer {path}")
        response = self._http.get(path, params=params)
        if allow_404 and response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TrainerError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()
