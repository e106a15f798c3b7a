"""The run report: one self-contained HTML file (charts inlined as a PNG; no network to view it).

On one shared time axis (seconds since the run started): latency p50/p95/p99, throughput (with the
schedule's planned users), errors by status, and each service's CPU and memory; the marked windows
(swap, rollback, fault) are shaded across every chart. Above the charts: the run's labels, its
summary, the SLO verdict and the baseline comparison when there are any. Drawn with matplotlib (Agg).
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.baseline import Comparison
from harness.load.schedule import Schedule
from harness.observations import Observation
from harness.report.resources import ResourceSample
from harness.report.timeseries import Window, buckets
from harness.slo import LatencySummary, status_counts
from harness.slo_check import SloVerdict

_WINDOW_COLOURS = ("#f4a261", "#9b5de5", "#e63946", "#2a9d8f", "#e9c46a", "#457b9d")
_STATUS_COLOURS = {
    0: "#000000",
    408: "#6d597a",
    429: "#b56576",
    500: "#e63946",
    502: "#f77f00",
    503: "#fcbf49",
    504: "#9d0208",
    507: "#3d405b",
}


@dataclass
class RunReport:
    title: str
    observations: Sequence[Observation]
    windows: Sequence[Window] = ()
    resources: Sequence[ResourceSample] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    verdict: SloVerdict | None = None
    comparison: Comparison | None = None
    schedule: Schedule | None = None
    started_at: float | None = None  # wall clock of t = 0; default: the first request

    @property
    def t0(self) -> float:
        if self.started_at is not None:
            return self.started_at
        return min((o.started for o in self.observations), default=time.time())


def chart_png(report: RunReport) -> bytes:
    """The stacked charts as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = report.t0
    series = buckets(report.observations, t0)
    services = sorted({s.name for s in report.resources})
    rows = 5 if services else 3
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.4 * rows + 0.6), sharex=True, constrained_layout=True)
    mids = [b.start_s + b.width_s / 2 for b in series]
    width = series[0].width_s if series else 1.0

    latency = axes[0]
    for name, colour in (("p50", "#2a9d8f"), ("p95", "#e9c46a"), ("p99", "#e63946")):
        values = [_ms(getattr(b, f"{name}_s")) for b in series]
        latency.plot(mids, values, marker=".", color=colour, label=name)
    latency.set_ylabel("latency (ms)")
    latency.set_title(
        f"latency of 2xx answers per {width:g} s (a gap: too few samples for the percentile)",
        fontsize=9,
        loc="left",
    )
    latency.legend(loc="upper right", fontsize=8)

    throughput = axes[1]
    throughput.plot(mids, [b.ok_rps for b in series], color="#264653", label="2xx req/s")
    throughput.plot(mids, [b.rps for b in series], color="#8d99ae", linestyle="--", label="all req/s")
    versions = sorted({o.model_version for o in report.observations if o.ok and o.model_version is not None})
    if len(versions) > 1:  # which version answered, over time (a swap or a rollback shows here)
        for version in versions:
            per = buckets([o for o in report.observations if o.ok and o.model_version == version], t0, width)
            by_start = {b.start_s: b.ok_rps for b in per}
            throughput.plot(
                mids, [by_start.get(b.start_s, 0.0) for b in series], linewidth=1, label=f"version {version}"
            )
    throughput.set_ylim(bottom=0)
    throughput.set_ylabel("requests / s")
    throughput.legend(loc="upper left", fontsize=8, ncol=2)
    if report.schedule is not None:
        users = throughput.twinx()
        steps = report.schedule.steps
        xs = [s.at_s for s in steps] + [report.schedule.end_s]
        users.step(
            xs, [s.users for s in steps] + [steps[-1].users], where="post", color="#adb5bd", label="users"
        )
        users.set_ylabel("planned users")
        users.legend(loc="upper right", fontsize=8)

    errors = axes[2]
    statuses = sorted({s for b in series for s in b.by_status if not 200 <= s < 300})
    bottom = [0.0] * len(series)
    for status in statuses:
        rates = [b.by_status.get(status, 0) / b.width_s for b in series]
        errors.bar(
            mids,
            rates,
            width=width * 0.9,
            bottom=bottom,
            label=_status_label(status),
            color=_STATUS_COLOURS.get(status),
        )
        bottom = [a + r for a, r in zip(bottom, rates, strict=True)]
    errors.set_ylabel("errors / s")
    errors.set_ylim(bottom=0)
    if statuses:
        errors.legend(loc="upper right", fontsize=8, title="status", title_fontsize=8)
    else:
        errors.text(0.5, 0.5, "no error answers", transform=errors.transAxes, ha="center", color="#6c757d")

    if services:
        cpu, memory = axes[3], axes[4]
        for name in services:
            points = [s for s in report.resources if s.name == name]
            xs = [s.t - t0 for s in points]
            cpu.plot(xs, [math.nan if s.cpu_percent is None else s.cpu_percent for s in points], label=name)
            memory.plot(xs, [s.memory_bytes / 2**20 for s in points], label=name)
        cpu.set_ylabel("CPU (% of a core)")
        memory.set_ylabel("memory (MiB)")
        cpu.set_ylim(bottom=0)
        memory.set_ylim(bottom=0)
        for ax in (cpu, memory):
            ax.legend(loc="upper right", fontsize=8, ncol=min(4, len(services)))
    axes[-1].set_xlabel("seconds since the run started")

    for index, window in enumerate(report.windows):
        colour = _WINDOW_COLOURS[index % len(_WINDOW_COLOURS)]
        end = window.end if math.isfinite(window.end) else t0 + (mids[-1] + width if mids else 1)
        for ax in axes:
            ax.axvspan(window.start - t0, end - t0, color=colour, alpha=0.18, linewidth=0)
        axes[0].annotate(
            window.label,
            xy=(window.start - t0, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=8,
            color=colour,
            fontweight="bold",
        )
    for ax in axes:
        ax.grid(True, alpha=0.3)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()


def _ms(value: float | None) -> float:
    return math.nan if value is None else value * 1000


def _status_label(status: int) -> str:
    return "no answer" if status == 0 else str(status)


def render_html(report: RunReport) -> str:
    png = base64.b64encode(chart_png(report)).decode()
    summary = LatencySummary.of(report.observations, ok_only=True)
    obs = report.observations
    span = (max(o.ended for o in obs) - min(o.started for o in obs)) if obs else 0.0
    rows = [
        ("requests", f"{len(obs)} over {span:.1f} s ({len(obs) / span if span else 0:.1f} req/s)"),
        ("latency (2xx)", str(summary)),
        ("answers by status", ", ".join(f"{_status_label(s)}: {n}" for s, n in status_counts(obs).items())),
    ]
    rows += [(w.label, _window_text(w, report.t0)) for w in report.windows]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        "<p class='labels'>"
        + " ".join(
            f"<span>{html.escape(k)}: <b>{html.escape(v)}</b></span>" for k, v in report.labels.items()
        )
        + f"<span>generated {time.strftime('%Y-%m-%d %H:%M:%S')}</span></p>",
        "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows),
        "</table>",
    ]
    if report.verdict is not None:
        state = "pass" if report.verdict.passed else "fail"
        parts.append(
            f"<h2 class='{state}'>SLO {html.escape(report.verdict.environment)}: "
            f"{'met' if report.verdict.passed else 'NOT met'}</h2><ul>"
        )
        parts += [
            f"<li class='{'pass' if c.passed else 'fail'}'>{html.escape(c.message)}</li>"
            for c in report.verdict.checks
        ]
        parts.append("</ul>")
    if report.comparison is not None:
        state = "fail" if report.comparison.regressed else "pass"
        parts.append(f"<h2 class='{state}'>Baseline</h2><p>{html.escape(str(report.comparison))}</p>")
    parts.append(
        f"<img alt='latency, throughput, errors and resources over time' src='data:image/png;base64,{png}'>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _window_text(window: Window, t0: float) -> str:
    end = f"{window.end - t0:.1f} s" if math.isfinite(window.end) else "the end"
    return f"window from {window.start - t0:.1f} s to {end}"


def write_report(report: RunReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #212529; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1em; }
.labels span { margin-right: 1.5em; color: #495057; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #dee2e6; font-size: 0.9em; }
.pass { color: #2a7d4f; } .fail { color: #c1121f; }
img { max-width: 100%; border: 1px solid #dee2e6; }
"""
