"""Mutant: answers declare their outputs as FP64 while the model's metadata declares FP32 (the values
are the same; a client that trusts the datatype reads them wrong)."""

from mutant_patch import mutate

mutate(
    "sut.protocol",
    '        "datatype": datatype,\n        "data": array.reshape(-1).tolist(),',
    '        "datatype": "FP64" if datatype == "FP32" else datatype,\n'
    '        "data": array.reshape(-1).tolist(),',
)
