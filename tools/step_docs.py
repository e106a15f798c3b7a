"""Generate ``docs/steps.md``, the step vocabulary QA engineers write features from.

Usage::

    python tools/step_docs.py            # (re)write docs/steps.md
    python tools/step_docs.py --check    # exit 1 when docs/steps.md is not what the registry says

The page is built from :data:`harness.steps_registry.REGISTRY` (keyword, pattern, parameters and their
types and allowed words, the whole docstring, the example, the target capabilities each step needs,
whether it is a setup step, the module and function that define it: no line numbers, so that editing a
step module does not make the page stale), the cluster options and the custom ``parse`` types.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import re
import sys
from pathlib import Path

from harness.steps_registry import CUSTOM_TYPES, StepDefinition, load_step_library
from harness.targets.base import CAPABILITIES

ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "steps.md"
FIELD = re.compile(r"\{([A-Za-z_][\w]*)(?::([^}]*))?\}")
BUILTIN_TYPES = {
    "": "any text",
    "d": "a whole number",
    "g": "a number (`0.5`, `3`)",
    "f": "a decimal number",
    "w": "one word",
    "S": "text without spaces",
}
#: The words a parameter accepts where its type alone cannot say (a ``{name:w}`` is any word to the
#: parser, but only these mean something to the steps).
PARAMETER_WORDS = {
    "window": "the window an earlier step measured: `swap` or `rollback` (from 0.2 s before the request "
    "to 1 s after the gateway's answer, under load; a background action's too), `retraining` (the "
    'trainer\'s run, once a step such as "the retraining of demo finishes within ..." judged it), `load` '
    "(everything since the load started)",
    "model": "a model the scenario built: `demo` (any version), `slow` (the slow model of the restart "
    "feature); on another target, a model its profile declares",
    "problem": "`corrupt` (not an ONNX file) or `missing` (deleted after registration)",
    "word": "what the gateway says of its catalog database: `corrupt` (SQLite file damaged) or "
    "`unavailable` (PostgreSQL server down)",
    "what": "`its header` (the first 100 bytes) or `N of its pages` (random 4 KiB pages)",
    "name": "a word the error must contain (a model name such as `demo`)",
}
SECTIONS = {
    "cluster": "Cluster set-up and model artifacts",
    "cluster_plan": "Cluster set-up and model artifacts",
    "inference": "Inference requests",
    "swap": "Versions, hot-swap and rollback",
    "background": "Actions in the background and how they ended",
    "load": "Load, latency SLOs and windows",
    "load_profiles": "Load profiles, environment SLOs and latency baselines",
    "churn": "Workers coming and going",
}


def _paragraph(text: str | None) -> str:
    """A docstring as one Markdown paragraph (reST ``literal`` -> `literal`), whole: never cut."""
    if not text:
        return ""
    words = " ".join(line.strip() for line in inspect.cleandoc(text).splitlines() if line.strip())
    return re.sub(r"``([^`]+)``", r"`\1`", words)


def _type_words(type_name: str) -> str:
    converter = CUSTOM_TYPES[type_name]
    return _paragraph(converter.__doc__).rstrip(".") + f" (matches `{getattr(converter, 'pattern', '')}`)"


def _parameters(definition: StepDefinition) -> list[str]:
    out = []
    for name, type_name in FIELD.findall(definition.pattern):
        if type_name in CUSTOM_TYPES:
            kind = _type_words(type_name)
        else:
            kind = BUILTIN_TYPES.get(type_name, type_name)
        words = PARAMETER_WORDS.get(name)
        out.append(f"- `{name}`: {kind}" + (f"; {words}" if words else ""))
    if "datatable" in definition.params:
        out.append('- a table under the step (see the options under "Cluster options" below)')
    return out


def _where(definition: StepDefinition) -> str:
    path = definition.location.rpartition(":")[0]
    with contextlib.suppress(ValueError):
        path = Path(path).resolve().relative_to(ROOT).as_posix()
    return f"`{path}` (`{definition.func.__name__}`)"


def _section(definition: StepDefinition) -> str:
    module = Path(definition.location.rpartition(":")[0]).stem
    return SECTIONS.get(module, module.replace("_", " ").capitalize())


def _needs(definition: StepDefinition) -> list[str]:
    lines = []
    if definition.setup:
        lines.append(
            "Setup step: it describes what the scenario starts; the services start before the "
            "scenario's first step that acts, with every setup step's options."
        )
    if definition.needs:
        needs = ", ".join(f"`{c}` ({CAPABILITIES.get(c, '?')})" for c in definition.needs)
        lines.append(f"Needs of the target: {needs}.")
    else:
        lines.append("Needs of the target: `inference` only (every target).")
    return lines


def _cluster_options() -> list[str]:
    """The cluster table's options, from the step library (absent when it has none)."""
    try:
        from steps.cluster_plan import OPTIONS
    except ImportError:
        return []
    lines = [
        "## Cluster options",
        "",
        "A scenario describes its cluster with setup steps, in any order, before its first step that acts:",
        '`Given a cluster with 2 workers serving demo version "1"` (or the table form below) and add-on',
        "steps, each one option. The cluster starts once, with all of them. A step that needs an option",
        "the scenario lacks (cutting a link needs links that accept network faults) fails naming the step",
        'to add. The same options as rows of the table of `Given a cluster serving demo version "1" with:`',
        "(an optional `| option | value |` header row):",
        "",
        "| option | values | add-on step |",
        "|---|---|---|",
    ]
    for option in OPTIONS.values():
        add_on = f"`{option.add_on}`" if option.add_on else "(in the cluster step)"
        lines.append(f"| `{option.name}` | {option.values} | {add_on} |")
    return [*lines, ""]


def render(definitions: list[StepDefinition]) -> str:
    lines = [
        "# Step vocabulary",
        "",
        "<!-- generated by tools/step_docs.py from the step registry; do not edit by hand -->",
        "",
        "Every step drives or observes a real running service. In a feature, `And`/`But` continue the",
        "previous keyword. The same steps run under `pytest --gherkin` and behave. Each step below shows",
        "an example as a feature would say it, its pattern (`parse` syntax: `{name:d}` a whole number,",
        "`{name:w}` one word, `{name}` any text, and the custom types at the end), what each parameter",
        "accepts, and what it needs of the target under test (a scenario whose target lacks it is",
        "reported skipped).",
        "",
        "## Running the features",
        "",
        "```sh",
        "pytest --gherkin --collect-only            # check new feature files: nothing starts",
        "behave --dry-run                           # the same check under behave",
        "pytest --gherkin --backend local            # all of features/, printed as Gherkin",
        "pytest --gherkin -k swap --junitxml=reports/junit.xml --cucumberjson=reports/cucumber.json",
        "behave -D backend=local                     # the same features, the same steps",
        "pytest --gherkin --step-trace reports/trace.jsonl   # or: behave -D step_trace=reports/trace.jsonl",
        "```",
        "",
        "Before anything starts, both runners check every selected scenario: a malformed file (a Scenario",
        "Outline without Examples, a `<placeholder>` no Examples column fills, a step line before the first",
        "Scenario) and every step that no definition matches are reported at once with `file:line` (with",
        "near matches and a snippet to paste into a module of `steps/`), and the run stops with exit code 2.",
        "`--backend auto` (the default) uses Docker when an engine answers, else local processes. Reports:",
        "JUnit test cases are named by the scenario titles; in Cucumber JSON the steps after a failed one",
        "are `skipped`; a failed scenario carries each service's log tail (JUnit `system-err`, Cucumber",
        "embeddings); an interrupted run still writes both reports.",
        "",
        f"{len(definitions)} step definitions.",
        "",
        *_cluster_options(),
    ]
    by_section: dict[str, list[StepDefinition]] = {}
    for d in definitions:
        by_section.setdefault(_section(d), []).append(d)
    order = list(dict.fromkeys(SECTIONS.values()))
    for section, defs in sorted(by_section.items(), key=lambda kv: [*order, kv[0]].index(kv[0])):
        lines += [f"## {section}", ""]
        for d in defs:
            example = d.example or f"{d.keyword.capitalize()} {d.pattern}"
            lines += [f"### {example.splitlines()[0]}", ""]
            lines += [_paragraph(d.func.__doc__) or "(no docstring)", ""]
            lines += [f"Pattern ({d.keyword.capitalize()}): `{d.pattern}`", ""]
            params = _parameters(d)
            if params:
                lines += ["Parameters:", "", *params, ""]
            for line in _needs(d):
                lines += [line, ""]
            if "\n" in example:
                lines += ["```gherkin", example, "```", ""]
            lines += [f"Defined in {_where(d)}.", ""]
    lines += ["## Custom parameter types", ""]
    for name in sorted(CUSTOM_TYPES):
        lines.append(f"- `{name}`: {_type_words(name)}")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)
    text = render(load_step_library())
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run python tools/step_docs.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
