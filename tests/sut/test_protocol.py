"""V2 request validation shared by the gateway and the worker: every problem is a BadRequest saying what."""

from __future__ import annotations

import numpy as np
import pytest

from sut.protocol import (
    BadRequest,
    TensorSpec,
    build_response,
    check_inputs,
    parse_infer_request,
    parse_json,
    select_outputs,
)

SPECS = [TensorSpec("input", "FP32", (-1, 4))]


def tensor(**overrides) -> dict:
    return {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": list(range(8)), **overrides}


def test_valid_request_becomes_numpy_feeds():
    request = parse_infer_request({"id": "r1", "inputs": [tensor()]})
    feeds = check_inputs(request, SPECS, model="demo", version="1")
    assert request.id == "r1"
    assert feeds["input"].dtype == np.float32 and feeds["input"].shape == (2, 4)
    assert feeds["input"][1].tolist() == [4, 5, 6, 7]


def test_nested_data_is_accepted_in_row_major_order():
    request = parse_infer_request({"inputs": [tensor(data=[[0, 1, 2, 3], [4, 5, 6, 7]])]})
    assert request.inputs[0].array.reshape(-1).tolist() == list(range(8))


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ([], "JSON object"),
        ({}, "'inputs' must be a non-empty list"),
        ({"inputs": [tensor()], "id": 5}, "'id' must be a string"),
        ({"inputs": ["x"]}, "inputs[0] must be an object"),
        ({"inputs": [tensor(name="")]}, "'name' must be a non-empty string"),
        ({"inputs": [{"name": "input", "shape": [1, 4], "data": [1] * 4}]}, "missing 'datatype'"),
        ({"inputs": [tensor(shape=[2, -4])]}, "non-negative integers"),
        ({"inputs": [tensor(shape="2x4")]}, "'shape' must be a list"),
        ({"inputs": [tensor(data=[1, 2, 3])]}, "shape [2, 4] needs 8 values but 'data' has 3"),
        ({"inputs": [tensor(data=[[1, 2], [3]])]}, "ragged"),
        ({"inputs": [tensor(data=["1"] * 8)]}, "only numbers"),
        ({"inputs": [tensor(data=[True] * 8)]}, "got booleans"),
        ({"inputs": [tensor(datatype="INT32", data=[0.5] * 8)]}, "INT32 needs integers"),
        ({"inputs": [tensor(datatype="STRING")]}, "unsupported datatype 'STRING'"),
        ({"inputs": [tensor(), tensor()]}, "unique"),
        ({"inputs": [tensor()], "outputs": "predict"}, "'outputs' must be a list"),
    ],
)
def test_malformed_requests_say_what_is_wrong(payload, says):
    with pytest.raises(BadRequest) as info:
        parse_infer_request(payload)
    assert says in info.value.message and info.value.status == 400


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        (
            [tensor(shape=[8], data=list(range(8)))],
            "has shape [8] but model 'demo' version '1' expects [-1, 4]",
        ),
        ([tensor(shape=[4, 2])], "has shape [4, 2]"),
        ([tensor(datatype="FP64")], "has datatype FP64 but model 'demo' version '1' expects FP32"),
        ([tensor(name="x")], "has no input named 'x'"),
    ],
)
def test_inputs_are_checked_against_the_model(inputs, says):
    request = parse_infer_request({"inputs": inputs})
    with pytest.raises(BadRequest) as info:
        check_inputs(request, SPECS, model="demo", version="1")
    assert says in info.value.message


def test_missing_input_is_named():
    request = parse_infer_request({"inputs": [tensor()]})
    two = [*SPECS, TensorSpec("mask", "BOOL", (-1,))]
    with pytest.raises(BadRequest, match="needs input 'mask'"):
        check_inputs(request, two, model="m", version="1")


@pytest.mark.parametrize(("body", "says"), [(b"", "empty request body"), (b"{", "malformed JSON"),
                                            (b"\xff\xfe", "malformed JSON")])  # fmt: skip
def test_parse_json_errors(body, says):
    with pytest.raises(BadRequest, match=says):
        parse_json(body)


def test_requested_outputs_are_checked():
    request = parse_infer_request({"inputs": [tensor()], "outputs": [{"name": "nope"}]})
    with pytest.raises(BadRequest, match="has no output 'nope'"):
        select_outputs(request, ["predict"], model="demo", version="1")
    plain = parse_infer_request({"inputs": [tensor()]})
    assert select_outputs(plain, ["predict"], model="demo", version="1") == ["predict"]


def test_response_names_model_version_and_id():
    out = np.array([[1.5], [2.5]], dtype=np.float32)
    answer = build_response(model="demo", version="2", request_id="abc", outputs={"predict": out})
    assert answer == {
        "model_name": "demo",
        "model_version": "2",
        "id": "abc",
        "outputs": [{"name": "predict", "shape": [2, 1], "datatype": "FP32", "data": [1.5, 2.5]}],
    }
    generated = build_response(model="demo", version="2", request_id=None, outputs={"predict": out})
    assert generated["id"] and generated["id"] != "abc"
