"""Progress over time: the change between this report's JSON and an earlier one."""

from __future__ import annotations

from typing import Any

FIELDS = ("definitions", "implemented", "stubs", "hollow", "unused", "undefined", "ambiguous", "errors")
#: For these, going down is progress.
LOWER_IS_BETTER = {"stubs", "hollow", "unused", "undefined", "ambiguous", "errors"}


class CompareError(ValueError):
    """The previous report is not a report this tool wrote."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CompareError(f"{where} is {value!r}, not a number")
    return value


def validate(previous: Any) -> None:
    """Refuse anything but a stub report JSON, with the first thing that is wrong."""
    if not isinstance(previous, dict):
        raise CompareError(f"the top level is a {type(previous).__name__}, not an object")
    totals = previous.get("totals")
    if not isinstance(totals, dict):
        raise CompareError("no 'totals' object")
    for key in FIELDS:
        if key in totals:
            _number(totals[key], f"totals.{key}")
    if "percent_implemented" in totals:
        _number(totals["percent_implemented"], "totals.percent_implemented")
    files = previous.get("files", [])
    if not isinstance(files, list):
        raise CompareError("'files' is not a list")
    for i, row in enumerate(files):
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise CompareError(f"files[{i}] has no 'path'")
        for key in FIELDS:
            if key in row:
                _number(row[key], f"files[{i}].{key}")


def compare(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    validate(previous)
    before, after = previous["totals"], current["totals"]
    totals = {k: {"before": int(before.get(k, 0) or 0), "after": int(after.get(k, 0) or 0)} for k in FIELDS}
    for value in totals.values():
        value["change"] = value["after"] - value["before"]
    pct = {
        "before": float(before.get("percent_implemented", 0.0) or 0.0),
        "after": float(after.get("percent_implemented", 0.0) or 0.0),
    }
    pct["change"] = round(pct["after"] - pct["before"], 1)
    old_files = {f["path"]: f for f in previous.get("files", [])}
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
