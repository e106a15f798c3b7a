"""Target profiles of external deployments: a good one is read whole; every bad input is refused before
anything runs, in one line that names the file and the key."""

from __future__ import annotations

import json
import ssl
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.processes import free_port
from harness.targets import resolve
from harness.targets.external import ExternalTarget
from harness.targets.profile import ProfileError, is_loopback, load_profile

TOKEN_VARIABLE = "SERVINGBDD_TEST_PROFILE_TOKEN"


class _Live(BaseHTTPRequestHandler):
    """Answers /v2/health/live 200 and records the Authorization header each request carried."""

    seen: list[str | None] = []

    def do_GET(self) -> None:
        _Live.seen.append(self.headers.get("Authorization"))
        body = json.dumps({}).encode()
        self.send_response(200 if self.path == "/v2/health/live" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Live)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


GOOD = """\
url = "{url}/"
auth_header = "Authorization"
auth_env = "{token_variable}"
auth_prefix = "Bearer "
verify_tls = "/etc/ssl/certs/ca-certificates.crt"
timeout_s = 3
capabilities = ["repository", "metrics"]
check_reachable = {check}

[metrics]
url = "{url}/metrics"
request_counter = "requests_total"
latency_histogram = "request_latency_seconds"
model_label = "model_name"

[[models]]
name = "demo"
versions = ["1", "2"]
inputs = [{{name = "input", datatype = "FP32", shape = [-1, 4]}}]
outputs = [{{name = "predict", datatype = "FP32", shape = [-1, 1]}}]
[[models.examples]]
version = "1"
inputs = {{input = [0.1, 0.2, 0.3, 0.4]}}
outputs = {{predict = [1.234]}}
[[models.examples]]
version = "2"
inputs = {{input = [0.5, 0.6, 0.7, 0.8]}}
outputs = {{predict = [2.5]}}

[[models]]
name = "other"
versions = ["7"]
inputs = [{{name = "x", datatype = "INT64", shape = [-1, 2]}}]
"""


def _write(tmp_path: Path, text: str, name: str = "profile.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_profile_is_read_whole(tmp_path: Path, live_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "s3cret")
    path = _write(tmp_path, GOOD.format(url=live_url, token_variable=TOKEN_VARIABLE, check="true"))
    _Live.seen.clear()
    profile = load_profile(path)

    assert profile.source == str(path)
    assert profile.url == live_url, "the trailing slash is dropped"
    assert profile.headers == {"Authorization": "Bearer s3cret"}
    assert _Live.seen == ["Bearer s3cret"], "reachability is checked once, with the credentials"
    assert profile.verify == "/etc/ssl/certs/ca-certificates.crt" and profile.timeout_s == 3.0
    trusted = profile.tls()  # what the clients get: a context trusting that bundle, not the path
    assert isinstance(trusted, ssl.SSLContext) and trusted.cert_store_stats()["x509_ca"] > 0
    assert profile.capabilities == {"inference", "repository", "metrics"}
    assert profile.metrics is not None
    assert (profile.metrics.url, profile.metrics.request_counter) == (f"{live_url}/metrics", "requests_total")
    assert profile.metrics.latency_histogram == "request_latency_seconds"
    assert profile.metrics.model_label == "model_name"
    assert (profile.metrics.version_label, profile.metrics.status_label) == (None, None)

    demo = profile.models["demo"]
    assert demo.versions == ("1", "2")
    assert [(t.name, t.datatype, t.shape) for t in demo.inputs] == [("input", "FP32", (-1, 4))]
    assert [(t.name, t.datatype, t.shape) for t in demo.outputs] == [("predict", "FP32", (-1, 1))]
    # requests carry the examples' inputs, so that their known answers can judge the outputs
    assert demo.rows(1, seed=0) == {"input": [0.1, 0.2, 0.3, 0.4]}
    assert demo.rows(1, seed=1) == {"input": [0.5, 0.6, 0.7, 0.8]}
    assert demo.expected is not None
    assert demo.expected("1", {"input": [0.1, 0.2, 0.3, 0.4]}) == {"predict": [1.234]}
    assert demo.expected("2", {"input": [0.5, 0.6, 0.7, 0.8]}) == {"predict": [2.5]}
    with pytest.raises(KeyError):
        demo.expected("2", {"input": [0.1, 0.2, 0.3, 0.4]})  # no known answer: never a made-up one

    other = profile.models["other"]
    assert other.expected is None, "without examples the harness cannot know the right answers"
    body = other.request(3, seed=1)
    assert body["inputs"][0]["shape"] == [3, 2] and len(body["inputs"][0]["data"]) == 6
    assert profile.examples["other"] == []


def test_the_least_a_profile_needs(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        url = "https://staging.invalid"
        check_reachable = false
        [[models]]
        name = "m"
        versions = ["1"]
        inputs = [{name = "x", datatype = "FP32", shape = [-1, 3]}]
        """,
    )
    profile = load_profile(path)
    assert profile.capabilities == {"inference"}
    assert profile.headers == {} and profile.verify is True and profile.timeout_s == 10.0
    assert profile.metrics is None


def test_a_profile_in_pyproject_is_the_default_target(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
        [project]
        name = "someone-elses"

        [tool.servingbdd.target]
        url = "http://127.0.0.1:9"
        check_reachable = false
        capabilities = ["repository"]
        [[tool.servingbdd.target.models]]
        name = "m"
        versions = ["1"]
        inputs = [{name = "x", datatype = "FP32", shape = [-1, 3]}]
        """,
        name="pyproject.toml",
    )
    cls = resolve(None, None, rootdir=tmp_path)
    assert issubclass(cls, ExternalTarget) and not cls.needs_backend
    assert cls.profile.source == str(tmp_path / "pyproject.toml")
    assert cls.profile.capabilities == {"inference", "repository"}
    assert resolve("reference", None, rootdir=tmp_path).name == "reference", "an explicit name wins"


def test_a_profile_file_names_an_external_target(tmp_path: Path, live_url: str) -> None:
    path = _write(tmp_path, GOOD.format(url=live_url, token_variable=TOKEN_VARIABLE, check="false"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TOKEN_VARIABLE, "t")
        cls = resolve("reference", str(path))
    assert issubclass(cls, ExternalTarget)
    assert cls.profile.url == live_url


def test_loopback_urls_are_told_apart() -> None:
    assert (
        is_loopback("http://127.0.0.1:8000")
        and is_loopback("http://localhost/")
        and is_loopback("http://[::1]:80")
    )
    assert not is_loopback("https://staging.invalid")


# -- every bad input: one line, naming the file and the key ----------------------------------------------
MODEL = """
[[models]]
name = "m"
versions = ["1"]
inputs = [{name = "x", datatype = "FP32", shape = [-1, 3]}]
"""
BASE = 'url = "https://staging.invalid"\ncheck_reachable = false\n'
ONE = BASE + '[[models]]\nname = "m"\nversions = ["1"]\n'  # a model, its inputs to come

BAD: dict[str, tuple[str, str, str]] = {
    # id: (profile text, the key named, what the message says)
    "invalid TOML": ("url = \n", "", "not valid TOML"),
    "no url": ("check_reachable = false\n" + MODEL, "url", "missing (expected a string)"),
    "url not a string": (
        "url = 8000\ncheck_reachable = false\n" + MODEL,
        "url",
        "expected a string, got int 8000",
    ),
    "url without scheme": (
        'url = "staging.invalid:8000"\ncheck_reachable = false\n' + MODEL,
        "url",
        "expected an http(s) URL with a host",
    ),
    "url not http": ('url = "ftp://host"\ncheck_reachable = false\n' + MODEL, "url", "http(s) URL"),
    "auth header without its variable": (
        BASE + 'auth_header = "Authorization"\n' + MODEL,
        "auth_env",
        "missing (expected a string)",
    ),
    "auth variable not set": (
        BASE + 'auth_header = "X-Key"\nauth_env = "SERVINGBDD_TEST_SURELY_UNSET"\n' + MODEL,
        "auth_env",
        "the environment variable SERVINGBDD_TEST_SURELY_UNSET is not set",
    ),
    "verify_tls a number": (
        BASE + "verify_tls = 1\n" + MODEL,
        "verify_tls",
        "expected true or false or a string",
    ),
    "verify_tls a missing CA bundle": (
        BASE + 'verify_tls = "/nonexistent/ca.pem"\n' + MODEL,
        "verify_tls",
        "no CA bundle or directory at /nonexistent/ca.pem",
    ),
    "timeout a string": (BASE + 'timeout_s = "10"\n' + MODEL, "timeout_s", "expected an integer or float"),
    "timeout a boolean": (BASE + "timeout_s = true\n" + MODEL, "timeout_s", "expected an integer or float"),
    "capabilities not a list": (
        BASE + 'capabilities = "metrics"\n' + MODEL,
        "capabilities",
        "expected a list",
    ),
    "capability not a string": (
        BASE + "capabilities = [3]\n" + MODEL,
        "capabilities[0]",
        "expected a string",
    ),
    "unknown capability": (
        BASE + 'capabilities = ["telepathy"]\n' + MODEL,
        "capabilities",
        "unknown capability",
    ),
    "capability the harness must run": (
        BASE + 'capabilities = ["lifecycle"]\n' + MODEL,
        "capabilities",
        "'lifecycle' needs services the harness runs itself",
    ),
    "metrics without a table": (
        BASE + 'capabilities = ["metrics"]\n' + MODEL,
        "metrics",
        "missing (expected a table)",
    ),
    "metrics without a counter": (
        BASE + 'capabilities = ["metrics"]\n[metrics]\nurl = "https://staging.invalid/metrics"\n' + MODEL,
        "metrics.request_counter",
        "missing",
    ),
    "check_reachable a string": (
        'url = "https://staging.invalid"\ncheck_reachable = "no"\n' + MODEL,
        "check_reachable",
        "expected true or false",
    ),
    "no models": (BASE, "models", "missing (expected a list)"),
    "empty models": (BASE + "models = []\n", "models", "expected at least one [[models]] table"),
    "models not tables": (BASE + 'models = ["demo"]\n', "models[0].", "expected a table"),
    "model without a name": (
        BASE + '[[models]]\nversions = ["1"]\ninputs = [{name = "x", datatype = "FP32", shape = [3]}]\n',
        "models[0].name",
        "missing",
    ),
    "version not a string": (
        BASE
        + '[[models]]\nname = "m"\nversions = [1]\ninputs = [{name = "x", datatype = "FP32", shape = [3]}]\n',
        "models[0].versions[0]",
        "expected a string, got 1",
    ),
    "no inputs": (ONE, "models[0].inputs", "missing"),
    "empty inputs": (
        ONE + "inputs = []\n",
        "models[0].inputs",
        "expected at least one input tensor",
    ),
    "unknown datatype": (
        ONE + 'inputs = [{name = "x", datatype = "FP33", shape = [3]}]\n',
        "models[0].inputs[0].datatype",
        "unknown datatype 'FP33'",
    ),
    "shape of strings": (
        ONE + 'inputs = [{name = "x", datatype = "FP32", shape = ["3"]}]\n',
        "models[0].inputs[0].shape[0]",
        "expected an integer",
    ),
    "shape of booleans": (
        ONE + 'inputs = [{name = "x", datatype = "FP32", shape = [true]}]\n',
        "models[0].inputs[0].shape[0]",
        "expected an integer",
    ),
    "tensor without a name": (
        ONE + 'inputs = [{datatype = "FP32", shape = [3]}]\n',
        "models[0].inputs[0].name",
        "missing",
    ),
    "example of an undeclared version": (
        BASE
        + MODEL
        + '[[models.examples]]\nversion = "3"\ninputs = {x = [1.0, 2.0, 3.0]}\noutputs = {y = [1.0]}\n',
        "models[0].examples[0].version",
        "'3' is not in ['1']",
    ),
    "example inputs not a table": (
        BASE + MODEL + '[[models.examples]]\nversion = "1"\ninputs = [1.0]\noutputs = {y = [1.0]}\n',
        "models[0].examples[0].inputs",
        "expected a table",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_profile_is_one_line_naming_the_file_and_the_key(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVINGBDD_TEST_SURELY_UNSET", raising=False)
    text, key, what = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    message = str(raised.value)
    assert "\n" not in message, f"more than one line: {message!r}"
    assert message.startswith(f"{path}: "), message
    if key:
        assert message.startswith(f"{path}: {key}"), f"the key {key!r} is not named first: {message}"
    assert what in message, message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=f"^{tmp_path / 'nope.toml'}: no such file$"):
        load_profile(tmp_path / "nope.toml")


def test_a_pyproject_without_the_table_says_which_table(tmp_path: Path) -> None:
    path = _write(tmp_path, "[tool.other]\nx = 1\n", name="pyproject.toml")
    with pytest.raises(ProfileError, match=r": no \[tool\.servingbdd\.target\] table$"):
        load_profile(path, table=("tool", "servingbdd", "target"))
    path.write_text('[tool.servingbdd]\ntarget = "staging"\n')
    with pytest.raises(ProfileError, match=r": profile: expected a table$"):
        load_profile(path, table=("tool", "servingbdd", "target"))


def test_an_unreachable_deployment_is_refused_before_any_scenario(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    path = _write(tmp_path, f'url = "{url}"\n' + MODEL)
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: url: {url} is not reachable (ConnectError")
    assert "\n" not in message
