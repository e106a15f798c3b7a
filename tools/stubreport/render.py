"""Text (terminal), JSON (machines, ``--compare``) and Markdown (CI summaries, PR comments)."""

from __future__ import annotations

import json
from typing import Any

from .compare import FIELDS, describe

_COLUMNS = (
    ("defs", "definitions"),
    ("impl", "implemented"),
    ("stub", "stubs"),
    ("hollow", "hollow"),
    ("unused", "unused"),
    ("undef", "undefined"),
    ("ambig", "ambiguous"),
    ("err", "errors"),
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _summary(t: dict[str, Any], runner: str = "") -> str:
    unbound = f", {t['unbound_features']} feature files bound by no test" if t.get("unbound_features") else ""
    return (
        (f"runner: {runner}\n" if runner else "")
        + f"{t['definitions']} step definitions in {t['step_files']} files, "
        f"{t['feature_steps']} feature steps in {t['feature_files']} files{unbound}\n"
        f"implemented {t['implemented']} ({_pct(t['percent_implemented'])})  stubs {t['stubs']}  "
        f"hollow {t['hollow']}  unused {t['unused']}  undefined {t['undefined']}  "
        f"ambiguous {t['ambiguous']}  errors {t['errors']}"
    )


def _where(row: dict[str, Any], item: dict[str, Any]) -> str:
    return f"{row['path']}:{item['line']}"


def render_json(data: dict[str, Any]) -> str:
    """Compact (the C encoder; pretty-printing 1,000 verdicts costs more than building them)."""
    return json.dumps(data, separators=(",", ":")) + "\n"


def render_text(data: dict[str, Any]) -> str:
    out = ["Stub report", _summary(data["totals"], data.get("runner", "")), ""]
    rows = [
        r
        for r in data["files"]
        if r["definitions"] or any(r[k] for k in ("undefined", "ambiguous", "errors"))
    ]
    if rows:
        width = max(len(r["path"]) for r in rows)
        out.append(
            f"{'file (worst first)':<{width}}  " + " ".join(f"{h:>6}" for h, _ in _COLUMNS) + "   impl%"
        )
        for r in rows:
            cells = " ".join(f"{r[k]:>6}" for _, k in _COLUMNS)
            out.append(f"{r['path']:<{width}}  {cells}  {_pct(r['percent_implemented']):>6}")
        out.append("")
    for verdict, title in (
        ("stub", "Stubs"),
        ("hollow", "Hollow (touch nothing real)"),
        ("unused", "Unused"),
    ):
        items = [(r, v) for r in data["files"] for v in r["verdicts"] if v["verdict"] == verdict]
        if items:
            out.append(f"{title}: {len(items)}")
            for r, v in items:
                pattern = next((p["pattern"] for p in v["patterns"] if p["pattern"]), "?")
                out.append(f"  {_where(r, v)} {v['function']} [{pattern}]")
                out.extend(f"      - {reason}" for reason in v["reasons"])
            out.append("")
    needs: dict[str, int] = {}
    for r in data["files"]:
        for v in r["verdicts"]:
            for capability in {c for p in v["patterns"] for c in p.get("needs") or []}:
                needs[capability] = needs.get(capability, 0) + 1
    if needs:  # our registry: which target capabilities the steps need (docs/steps.md names each step's)
        counts = ", ".join(f"{c} {n}" for c, n in sorted(needs.items()))
        out += [f"Steps by the target capability they need: {counts}", ""]
    undefined = [(r, u) for r in data["files"] for u in r["undefined_steps"]]
    if undefined:
        out.append(f"Undefined steps: {len(undefined)} (snippets to paste)")
        for r, u in undefined:
            out.append(f"  {_where(r, u)}  {u['keyword']} {u['text']}")
            out.extend(f"      {line}" for line in u["snippet"].rstrip().splitlines())
        out.append("")
    ambiguous = [(r, a) for r in data["files"] for a in r["ambiguous_steps"]]
    if ambiguous:
        out.append(f"Ambiguous steps: {len(ambiguous)}")
        for r, a in ambiguous:
            out.append(f"  {_where(r, a)}  {a['keyword']} {a['text']}")
            out.extend(f"      matches {m}" for m in a["matches"])
        out.append("")
    if data["errors"]:
        out.append(f"Unreadable files: {data['totals']['errors']}")
        out.extend(f"  {e['path']}:{e['line']}: {e['message']}" for e in data["errors"])
        out.append("")
    if data.get("unbound_features"):
        out.append(f"Feature files no test binds: {len(data['unbound_features'])}")
        out.extend(f"  {path}" for path in data["unbound_features"])
        out.append("")
    for note in data.get("notes", []):
        out.append(f"Note: {note}")
    if data.get("trace_unmatched"):
        out.append("Trace functions matching no definition: " + ", ".join(data["trace_unmatched"]))
        out.append("")
    if "compare" in data:
        out.extend(_compare_text(data["compare"]))
    return "\n".join(out).rstrip() + "\n"


def _compare_text(change: dict[str, Any]) -> list[str]:
    pct = change["percent_implemented"]
    out = [f"Change since the previous report: implemented {_pct(pct['before'])} -> {_pct(pct['after'])}"]
    for name in FIELDS:
        t = change["totals"][name]
        out.append(f"  {name:<12} {t['before']:>6} -> {t['after']:>6}  {describe(t['change'], name)}")
    for f in change["files"]:
        details = ", ".join(f"{k} {v:+d}" for k, v in f["changes"].items())
        out.append(f"  {f['status']:<8} {f['path']}  {details}".rstrip())
    return out


def render_markdown(data: dict[str, Any]) -> str:
    t = data["totals"]
    out = ["## Stub report", "", _summary(t, data.get("runner", "")).replace("\n", "  \n"), ""]
    out.append("| file | " + " | ".join(h for h, _ in _COLUMNS) + " | impl% |")
    out.append("|---|" + "---:|" * (len(_COLUMNS) + 1))
    for r in data["files"]:
        if r["definitions"] or any(r[k] for k in ("undefined", "ambiguous", "errors")):
            cells = " | ".join(str(r[k]) for _, k in _COLUMNS)
            out.append(f"| `{r['path']}` | {cells} | {_pct(r['percent_implemented'])} |")
    out.append("")
    problems = [(r, v) for r in data["files"] for v in r["verdicts"] if v["verdict"] in ("stub", "hollow")]
    if problems:
        out += ["### Stub and hollow definitions", ""]
        out += [
            f"- **{v['verdict']}** `{_where(r, v)}` `{v['function']}`: {'; '.join(v['reasons'])}"
            for r, v in problems
        ]
        out.append("")
    needs: dict[str, int] = {}
    for r in data["files"]:
        for v in r["verdicts"]:
            for capability in {c for p in v["patterns"] for c in p.get("needs") or []}:
                needs[capability] = needs.get(capability, 0) + 1
    if needs:  # our registry: which target capabilities the steps need (docs/steps.md names each step's)
        counts = ", ".join(f"{c} {n}" for c, n in sorted(needs.items()))
        out += [f"Steps by the target capability they need: {counts}", ""]
    undefined = [(r, u) for r in data["files"] for u in r["undefined_steps"]]
    if undefined:
        out += ["### Undefined steps", ""]
        for r, u in undefined:
            out += [
                f"- `{_where(r, u)}` {u['keyword']} {u['text']}",
                "",
                "```python",
                u["snippet"].rstrip(),
                "```",
            ]
        out.append("")
    ambiguous = [(r, a) for r in data["files"] for a in r["ambiguous_steps"]]
    if ambiguous:
        out += ["### Ambiguous steps", ""]
        out += [
            f"- `{_where(r, a)}` {a['text']}: " + ", ".join(f"`{m}`" for m in a["matches"])
            for r, a in ambiguous
        ]
        out.append("")
    if data.get("unbound_features"):
        out += ["### Feature files no test binds", ""] + [f"- `{p}`" for p in data["unbound_features"]] + [""]
    if data["errors"]:
        out += ["### Unreadable files", ""] + [
            f"- `{e['path']}:{e['line']}` {e['message']}" for e in data["errors"]
        ]
        out.append("")
    if "compare" in data:
        out += ["### Change since the previous report", "", "```", *_compare_text(data["compare"]), "```"]
    return "\n".join(out).rstrip() + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
