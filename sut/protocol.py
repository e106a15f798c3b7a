"""Open Inference Protocol (KServe V2) request parsing, validation and response building.

Framework-free so that the gateway and the worker validate requests identically. Every problem
raises ``BadRequest`` with a message that says exactly what was wrong.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from sut.errors import ApiError

# V2 datatype -> numpy dtype (BYTES is not supported by the reference cluster).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_NUMPY_TO_V2 = {dtype: name for name, dtype in DATATYPES.items()}
# onnxruntime's type strings ("tensor(float)") -> V2 datatype
ONNX_TO_V2 = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}


class BadRequest(ApiError):
    status = 400


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as V2 metadata shows it; -1 marks a dynamic dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[InputTensor]
    requested_outputs: list[str] | None
    parameters: dict[str, Any]


def parse_json(body: bytes) -> Any:
    """Decode a JSON request body, or say why it is not JSON."""
    if not body.strip():
        raise BadRequest("empty request body: expected a JSON object")
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"malformed JSON body: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise BadRequest(message)


def _parse_shape(raw: Any, where: str) -> tuple[int, ...]:
    _require(isinstance(raw, list), f"{where}: 'shape' must be a list of non-negative integers")
    for dim in raw:
        ok = isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0
        _require(ok, f"{where}: 'shape' must be a list of non-negative integers, got {raw!r}")
    return tuple(raw)


def _to_array(data: Any, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    _require(isinstance(data, list), f"{where}: 'data' must be a list of numbers")
    try:
        raw = np.asarray(data)
    except ValueError:
        raise BadRequest(f"{where}: 'data' is a ragged nested list") from None
    expected = math.prod(shape)
    if raw.size != expected:
        raise BadRequest(f"{where}: shape {list(shape)} needs {expected} values but 'data' has {raw.size}")
    if raw.size and raw.dtype.kind not in "biuf":
        raise BadRequest(f"{where}: 'data' must contain only numbers for datatype {datatype}")
    if datatype == "BOOL":
        _require(raw.size == 0 or raw.dtype.kind == "b", f"{where}: datatype BOOL needs true/false values")
    else:
        _require(raw.dtype.kind != "b", f"{where}: datatype {datatype} needs numbers, got booleans")
        if DATATYPES[datatype].kind in "iu":
            _require(raw.size == 0 or raw.dtype.kind in "iu", f"{where}: datatype {datatype} needs integers")
    try:
        return raw.astype(DATATYPES[datatype], casting="unsafe").reshape(shape)
    except (OverflowError, ValueError) as exc:
        raise BadRequest(f"{where}: values do not fit datatype {datatype}: {exc}") from None


def _parse_input(raw: Any, index: int) -> InputTensor:
    where = f"inputs[{index}]"
    _require(isinstance(raw, dict), f"{where} must be an object with name, shape, datatype and data")
    name = raw.get("name")
    _require(isinstance(name, str) and name != "", f"{where}: 'name' must be a non-empty string")
    where = f"input '{name}'"
    for key in ("shape", "datatype", "data"):
        _require(key in raw, f"{where}: missing '{key}'")
    datatype = raw["datatype"]
    _require(isinstance(datatype, str), f"{where}: 'datatype' must be a string")
    if datatype not in DATATYPES:
        supported = ", ".join(DATATYPES)
        raise BadRequest(f"{where}: unsupported datatype {datatype!r} (supported: {supported})")
    shape = _parse_shape(raw["shape"], where)
    return InputTensor(name, datatype, shape, _to_array(raw["data"], datatype, shape, where))


def parse_infer_request(payload: Any) -> InferRequest:
    """Validate a decoded V2 infer request body on its own (without knowing the model)."""
    _require(isinstance(payload, dict), "request body must be a JSON object with an 'inputs' list")
    request_id = payload.get("id")
    _require(request_id is None or isinstance(request_id, str), "'id' must be a string")
    inputs = payload.get("inputs")
    _require(isinstance(inputs, list) and len(inputs) > 0, "'inputs' must be a non-empty list")
    parsed = [_parse_input(raw, i) for i, raw in enumerate(inputs)]
    names = [t.name for t in parsed]
    _require(len(set(names)) == len(names), f"input names must be unique, got {names}")
    parameters = payload.get("parameters") or {}
    _require(isinstance(parameters, dict), "'parameters' must be an object")
    requested = None
    if payload.get("outputs") is not None:
        outs = payload["outputs"]
        _require(isinstance(outs, list), "'outputs' must be a list of {\"name\": ...} objects")
        requested = []
        for i, out in enumerate(outs):
            ok = isinstance(out, dict) and isinstance(out.get("name"), str)
            _require(ok, f"outputs[{i}] must be an object with a string 'name'")
            requested.append(out["name"])
    return InferRequest(request_id, parsed, requested, parameters)


def _dim_ok(expected: int, got: int) -> bool:
    return expected < 0 or expected == got


def check_inputs(request: InferRequest, specs: list[TensorSpec], *, model: str, version: str) -> dict:
    """Match the request's inputs to the model's inputs; return the feeds for the session."""
    label = f"model '{model}' version '{version}'"
    by_name = {t.name: t for t in request.inputs}
    expected_names = [s.name for s in specs]
    for name in by_name:
        _require(name in expected_names, f"{label} has no input named {name!r} (inputs: {expected_names})")
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        tensor = by_name.get(spec.name)
        _require(tensor is not None, f"{label} needs input '{spec.name}', which the request lacks")
        assert tensor is not None
        if tensor.datatype != spec.datatype:
            raise BadRequest(
                f"input '{spec.name}' has datatype {tensor.datatype} but {label} expects {spec.datatype}"
            )
        fits = len(tensor.shape) == len(spec.shape) and all(
            _dim_ok(e, g) for e, g in zip(spec.shape, tensor.shape, strict=True)
        )
        if not fits:
            raise BadRequest(
                f"input '{spec.name}' has shape {list(tensor.shape)} but {label} expects "
                f"{list(spec.shape)} (-1 = any size)"
            )
        feeds[spec.name] = tensor.array
    return feeds


def select_outputs(request: InferRequest, available: list[str], *, model: str, version: str) -> list[str]:
    """The output names to return: those requested, or all of them."""
    if request.requested_outputs is None:
        return available
    for name in request.requested_outputs:
        _require(name in available, f"model '{model}' version '{version}' has no output {name!r} "
                                    f"(outputs: {available})")  # fmt: skip
    return request.requested_outputs


def output_tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    datatype = _NUMPY_TO_V2.get(array.dtype)
    if datatype is None:
        raise ValueError(f"output {name!r} has dtype {array.dtype}, which V2 JSON cannot carry")
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": array.reshape(-1).tolist(),
    }


def build_response(
    *, model: str, version: str, request_id: str | None, outputs: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The V2 answer; a request without an ``id`` gets a generated one, so every answer carries one."""
    response: dict[str, Any] = {"model_name": model, "model_version": version}
    response["id"] = request_id if request_id is not None else uuid.uuid4().hex
    response["outputs"] = [output_tensor(name, arr) for name, arr in outputs.items()]
    return response
