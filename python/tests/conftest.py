"""Helpers shared by the tests: safetensors files written and read with numpy alone (the
format is a JSON header and raw little-endian data), the `lottery` binary, MNIST's test set."""

import gzip
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def load_safetensors(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    kinds = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "U8": "u1", "BOOL": "u1"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(body[b:e], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out


@pytest.fixture(scope="session")
def cli():
    """Runs the `lottery` binary ($LOTTERY_BIN, else the workspace's build) from the repository
    root; fails with its stderr."""
    given = os.environ.get("LOTTERY_BIN")
    candidates = [Path(given)] if given else [ROOT / "target/release/lottery", ROOT / "target/debug/lottery"]
    binary = next((c for c in candidates if c.is_file()), None)
    if binary is None:
        if given:
            pytest.fail(f"LOTTERY_BIN={given} does not exist")
        pytest.skip("no lottery binary: build the workspace (cargo build) or set LOTTERY_BIN")

    def run(*args):
        p = subprocess.run([str(binary), *map(str, args)], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, f"lottery {' '.join(map(str, args))}: {p.stderr}"
        return p.stdout

    return run


def mnist_test():
    """MNIST's test images, normalised as lottery does (float32 arithmetic), and labels."""
    d = ROOT / "data/mnist"

    def idx(name):
        raw = gzip.open(d / name).read()
        dims = [struct.unpack(">I", raw[4 + 4 * i : 8 + 4 * i])[0] for i in range(raw[3])]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)

    x = idx("t10k-images-idx3-ubyte.gz").astype(np.float32)
    x = (x / np.float32(255.0) - np.float32(0.1307)) / np.float32(0.3081)
    return x.reshape(-1, 1, 28, 28), idx("t10k-labels-idx1-ubyte.gz")


def random_dict(layout, seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.normal(scale=0.1, size=s).astype(np.float32) for n, s in layout}


def mlp_forward(sd, x, names):
    a = x.reshape(len(x), -1).astype(np.float64)
    for i, n in enumerate(names):
        a = a @ sd[f"{n}.weight"].T.astype(np.float64) + sd[f"{n}.bias"]
        if i + 1 < len(names):
            a = np.maximum(a, 0)
    return a
