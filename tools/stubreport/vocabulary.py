"""Which callables are known not to reach a service (everything else is assumed to).

Being conservative on purpose: an unknown call counts as real, so the static view never calls a step
hollow that might drive something; the run-time trace (``--trace``) catches the rest.
"""

from __future__ import annotations

import builtins

INERT_MODULES = frozenset(
    {
        "logging", "time", "random", "math", "statistics", "json", "re", "itertools", "functools",
        "collections", "string", "textwrap", "datetime", "decimal", "fractions", "operator", "dataclasses",
        "typing", "enum", "copy", "pprint", "uuid", "secrets", "hashlib", "base64", "warnings", "numbers",
        "inspect", "types", "contextlib", "weakref", "heapq", "bisect", "difflib", "shlex", "fnmatch",
        "parse",
    }
)  # fmt: skip
INERT_QUALNAMES = frozenset(
    {
        "asyncio.sleep",
        "pytest.approx",
        "pytest.raises",
        "pytest.warns",
        "pytest.fail",
        "os.getenv",
        "os.path.join",
    }
)
SLEEPS = frozenset({"time.sleep", "asyncio.sleep", "gevent.sleep"})
PENDING = frozenset(
    {"pytest.skip", "pytest.xfail", "pytest.importorskip", "pytest_bdd.pending", "behave.pending"}
)
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})
MUTATORS = frozenset(
    {
        "append",
        "extend",
        "add",
        "update",
        "insert",
        "setdefault",
        "pop",
        "remove",
        "clear",
        "discard",
        "popitem",
    }
)
REAL_BUILTINS = frozenset({"open", "exec", "eval", "__import__", "input", "compile", "breakpoint"})
INERT_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_")) - REAL_BUILTINS
PENDING_EXCEPTIONS = frozenset(
    {"NotImplementedError", "NotImplemented", "PendingStepError", "StepNotImplementedError"}
)
#: behave's ``context`` attributes that carry the feature's own input, not a service's answer.
BEHAVE_CONTEXT_INPUT = frozenset(
    {"table", "text", "feature", "scenario", "tags", "config", "active_outline", "stdout_capture",
     "log_capture", "stderr_capture", "capture", "runner", "step"}
)  # fmt: skip
BEHAVE_CONTEXT_INERT_METHODS = frozenset({"add_cleanup", "attach"})
FAKE_TOUCH = frozenset({"harness.trace.touch"})


def inert_qualname(qualname: str) -> bool:
    """Calling this (by its fully qualified import name) reaches no service."""
    if qualname in INERT_QUALNAMES or qualname in SLEEPS or qualname in FAKE_TOUCH:
        return True
    if qualname.startswith(("os.environ", "os.path.")):
        return True
    return qualname.split(".")[0] in INERT_MODULES
