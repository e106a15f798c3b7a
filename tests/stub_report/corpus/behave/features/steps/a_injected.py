# ruff: noqa: F821  (behave injects given/when/then into step modules: no import on purpose)
# Corpus: no import at all: behave injects the decorators; environment.py made "re" the default.
# ``# expect: VERDICT [RULE...]`` on a ``def`` line is checked by test_corpus.py.
import subprocess


@given(r'the service "(?P<name>[\w-]+)" is started')
def start_service(context, name):  # expect: implemented real.io
    context.proc = subprocess.run(["true", name], check=False)


@then(r"the service answers")
def service_answers(context):  # expect: implemented real.state
    context.client.request("GET", "/health")


@then(r"the service exited cleanly")
def exited_cleanly(context):  # expect: implemented real.state
    assert context.proc.returncode == 0


@when(r"a note is taken")
def take_note(context):  # expect: hollow inert.state
    context.notes.append("taken")


@then(r"the note is there")
def note_there(context):  # expect: hollow
    assert context.notes
