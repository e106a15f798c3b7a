"""Static (and optionally run-time) stub report for any BDD step library.

``tools/stub_report.py`` is the entry point; :mod:`.cli` wires the parts:
- reading a suite: :mod:`.config` (its settings), :mod:`.gherkin_reader` (feature files → concrete steps),
  :mod:`.runners` (each runner's model of the suite: behave, pytest-bdd, the harness's registry, Rust
  cucumber; Python sources through :mod:`.pyscan` and :mod:`.pysource`, never imported), :mod:`.matching`
  (the runners' own matchers);
- judging: :mod:`.classify` (stub / hollow / implemented; the rules are documented there and their data is
  :mod:`.rules`), with :mod:`.facts`, :mod:`.fixpoint`, :mod:`.hollow`, :mod:`.pyflow`, :mod:`.pycalls`
  and :mod:`.rustclassify`; :mod:`.trace` (run-time touches);
- telling: :mod:`.report`, :mod:`.render`, :mod:`.compare`, :mod:`.explain`, :mod:`.snippets`, and
  :mod:`.verify` (the report's model against the runner itself).
"""
