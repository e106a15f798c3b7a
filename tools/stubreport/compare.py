"""Progress over time: the change between this report's JSON and an earlier one."""

from __future__ import annotations

from typing import Any

FIELDS = ("definitions", "implemented", "stubs", "hollow", "unused", "undefined", "ambiguous", "errors")
#: For these, going down is progress.
LOWER_IS_BETTER = {"stubs", "hollow", "unused", "undefined", "ambiguous", "errors"}


class CompareError(ValueError):
    """The previous report is not a report this tool wrote."""


def compare(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(previous, dict) or not isinstance(previous.get("totals"), dict):
        raise CompareError("previous report has no 'totals' object")
    before, after = previous["totals"], current["totals"]
    totals = {k: {"before": int(before.get(k, 0) or 0), "after": int(after.get(k, 0) or 0)} for k in FIELDS}
    for value in totals.values():
        value["change"] = value["after"] - value["before"]
    pct = {
        "before": float(before.get("percent_implemented", 0.0) or 0.0),
        "after": float(after.get("percent_implemented", 0.0) or 0.0),
    }
    pct["change"] = round(pct["after"] - pct["before"], 1)
    old_files = {f.get("path"): f for f in previous.get("files", []) if isinstance(f, dict)}
    new_files = {f["path"]: f for f in current["files"]}
    files = []
    for path in sorted(old_files.keys() | new_files.keys(), key=str):
        old, new = old_files.get(path, {}), new_files.get(path, {})
        changes = {k: int(new.get(k, 0) or 0) - int(old.get(k, 0) or 0) for k in FIELDS}
        changes = {k: v for k, v in changes.items() if v}
        if changes or not old or not new:
            status = "new" if not old else "removed" if not new else "changed"
            files.append({"path": path, "status": status, "changes": changes})
    return {"totals": totals, "percent_implemented": pct, "files": files}


def describe(change: int, name: str) -> str:
    if change == 0:
        return "="
    better = (change < 0) == (name in LOWER_IS_BETTER)
    return f"{change:+d} ({'better' if better else 'worse'})"
