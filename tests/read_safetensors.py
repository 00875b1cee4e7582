#!/usr/bin/env python3
"""Reads a safetensors file with numpy alone and prints, as JSON, each tensor's dtype, shape,
sum and first element: an independent reader for the C++ writer's test."""
import json
import struct
import sys

import numpy as np

NUMPY_TYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "U8": np.uint8}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    result = {"__metadata__": header.pop("__metadata__", {})}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        raw = body[begin:end]
        if entry["dtype"] == "BF16":  # numpy has no bfloat16: widen the bits to float32
            values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            values = np.frombuffer(raw, dtype=np.dtype(NUMPY_TYPES[entry["dtype"]]).newbyteorder("<"))
        values = values.reshape(entry["shape"])
        flat = values.astype(np.float64).ravel()
        result[name] = {"dtype": entry["dtype"], "shape": list(values.shape),
                        "sum": float(flat.sum()), "first": float(flat[0]) if flat.size else None}
    return result


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
