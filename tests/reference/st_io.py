"""Minimal safetensors writer and reader, written by hand for the stsim fixtures.

File layout (the published safetensors format):
  * 8 bytes: little-endian unsigned 64-bit header length n;
  * n bytes: UTF-8 JSON object mapping tensor name -> {"dtype", "shape",
    "data_offsets": [begin, end]} plus an optional "__metadata__" object of
    string -> string; padded with spaces so that 8 + n is a multiple of 8;
  * the data section: raw little-endian tensor bytes, offsets relative to its
    start, laid out contiguously without gaps.

The writer is deterministic: "__metadata__" first, then tensors sorted by name,
data in the same order, compact JSON.  Re-running a script that writes the
same tensors therefore reproduces the file byte for byte.

Only the dtypes the fixtures use are supported: F64, F32, F16, BF16, I64, I32,
U8, BOOL.
"""

import json
import os
import struct
import tempfile

import numpy as np
import torch

# dtype tag -> (torch dtype, item size in bytes)
_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_TAG_OF = {v[0]: k for k, v in _DTYPES.items()}


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16: reinterpret the 16-bit patterns.
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def encode(tensors, metadata=None):
    """Return the safetensors bytes for a dict name -> torch.Tensor."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("safetensors metadata must map str to str: %r" % (k,))
        header["__metadata__"] = dict(sorted(metadata.items()))
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("tensor name __metadata__ is reserved")
        t = tensors[name]
        if t.dtype not in _TAG_OF:
            raise TypeError("unsupported dtype %s for %s" % (t.dtype, name))
        data = _tensor_bytes(t)
        if len(data) != t.numel() * _DTYPES[_TAG_OF[t.dtype]][1]:
            raise AssertionError("byte count mismatch for " + name)
        header[name] = {
            "dtype": _TAG_OF[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    # Pad so the data section starts 8-byte aligned (8 + n multiple of 8).
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)


def write_atomic(path, data):
    """Write bytes to path through a temporary file in the same folder + rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(path, tensors, metadata=None):
    write_atomic(path, encode(tensors, metadata))


def decode(data, what="<bytes>"):
    """Parse safetensors bytes; returns (dict name -> tensor, metadata dict).

    Every length, offset, dtype and shape is checked; errors name the tensor.
    """
    if len(data) < 8:
        raise ValueError("%s: shorter than the 8-byte header length" % what)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("%s: header length %d exceeds file size %d" % (what, n, len(data)))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("%s: header is not a JSON object" % what)
    body = data[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    spans = []
    for name, info in header.items():
        tag = info.get("dtype")
        if tag not in _DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %r" % (what, name, tag))
        dtype, size = _DTYPES[tag]
        shape = info.get("shape")
        if not isinstance(shape, list) or any((not isinstance(d, int)) or d < 0 for d in shape):
            raise ValueError("%s: tensor %s has a bad shape %r" % (what, name, shape))
        b, e = info.get("data_offsets", [None, None])
        count = 1
        for d in shape:
            count *= d
        if not (isinstance(b, int) and isinstance(e, int) and 0 <= b <= e <= len(body)):
            raise ValueError("%s: tensor %s has bad data_offsets %r" % (what, name, [b, e]))
        if e - b != count * size:
            raise ValueError("%s: tensor %s: %d bytes for shape %r of %s" % (what, name, e - b, shape, tag))
        spans.append((b, e, name))
        raw = body[b:e]
        if dtype == torch.bfloat16:
            t = torch.from_numpy(np.frombuffer(raw, dtype="<i2").copy()).view(torch.bfloat16)
        else:
            npdt = {torch.float64: "<f8", torch.float32: "<f4", torch.float16: "<f2",
                    torch.int64: "<i8", torch.int32: "<i4", torch.uint8: "u1",
                    torch.bool: "?"}[dtype]
            t = torch.from_numpy(np.frombuffer(raw, dtype=npdt).copy())
        out[name] = t.reshape(shape)
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise ValueError("%s: gap or overlap before tensor %s" % (what, name))
        pos = e
    if pos != len(body):
        raise ValueError("%s: %d trailing bytes after the last tensor" % (what, len(body) - pos))
    return out, meta


def load(path):
    with open(path, "rb") as f:
        return decode(f.read(), path)


def compare_trees(expected_dir, fresh_dir):
    """Byte-compare every file under fresh_dir with its twin under
    expected_dir; returns a list of human-readable differences."""
    problems = []
    for root, _, files in os.walk(fresh_dir):
        for fname in sorted(files):
            fresh = os.path.join(root, fname)
            rel = os.path.relpath(fresh, fresh_dir)
            old = os.path.join(expected_dir, rel)
            if not os.path.exists(old):
                problems.append("%s: missing from %s" % (rel, expected_dir))
                continue
            with open(fresh, "rb") as f1, open(old, "rb") as f2:
                if f1.read() != f2.read():
                    problems.append("%s: differs from a fresh regeneration" % rel)
    return problems


def verify_or_exit(expected_dir, generate):
    """Run generate(tmpdir) and exit(1) unless expected_dir matches it byte for byte."""
    import shutil
    import sys
    tmp = tempfile.mkdtemp(prefix="stsim-fixtures-")
    try:
        generate(tmp)
        problems = compare_trees(expected_dir, tmp)
    finally:
        shutil.rmtree(tmp)
    for p in problems:
        print("verify: " + p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("verify: %s matches a fresh regeneration" % expected_dir)
