"""Static (and optionally run-time) stub report for the BDD step library.

``tools/stub_report.py`` is the entry point; :mod:`tools.stubreport.cli` wires the parts:
:mod:`.features` (Gherkin → concrete steps), :mod:`.definitions` (step functions found by AST, never
imported), :mod:`.matching` (the runners' own matchers), :mod:`.classify` (stub / hollow / implemented,
the rules are documented there), :mod:`.trace` (run-time touches), :mod:`.report`, :mod:`.render`,
:mod:`.compare`.
"""
