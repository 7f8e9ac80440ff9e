#!/usr/bin/env python3
"""Cross-checks stsim's safetensors reader and writer against an independent
implementation: this script writes and parses the format by hand (json +
numpy bytes), following the published format description.

    cross-check.py PATH/st-tool
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print('SKIP: numpy is not installed')
    sys.exit(77)

tool = sys.argv[1]
rng = np.random.default_rng(1234)
fail = []


def f32_bits(a):
    return [int(x) for x in np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel()]


def write_by_hand(path, tensors, metadata, pad):
    """tensors: list of (name, dtype string, numpy array raw bytes source)."""
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    blobs, off = [], 0
    for name, dt, arr, raw in tensors:
        header[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    if pad:
        h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def check_reader(tmp):
    specials16 = np.array([0, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x3555],
                          dtype=np.uint16)
    f16 = np.concatenate([specials16, rng.integers(0, 65536, 500, dtype=np.uint16)])
    f16 = f16[((f16 & 0x7C00) != 0x7C00) | ((f16 & 0x3FF) == 0)]  # NaN payloads: test-safetensors.c
    bf16 = np.concatenate([np.array([0x0001, 0x7F7F, 0x8080, 0x7F80], dtype=np.uint16),
                           rng.integers(0, 65536, 500, dtype=np.uint16)])
    bf16 = bf16[((bf16 & 0x7F80) != 0x7F80) | ((bf16 & 0x7F) == 0)]
    f32 = rng.standard_normal((7, 9)).astype(np.float32)
    f64 = np.concatenate([rng.standard_normal(50) * 1e3, [1e-320, -0.0, 3.4e38, 1e-46]])
    i64 = np.array([0, -1, 2**40 + 1, -(2**53), 16777217], dtype=np.int64)
    i32 = np.array([-(2**31), 2**31 - 1, 7], dtype=np.int32)
    u8 = np.arange(6, dtype=np.uint8).reshape(2, 3)
    tensors = [
        ('half', 'F16', f16, f16.astype('<u2').tobytes()),
        ('brain', 'BF16', bf16, bf16.astype('<u2').tobytes()),
        ('single', 'F32', f32, f32.astype('<f4').tobytes()),
        ('double', 'F64', f64, f64.astype('<f8').tobytes()),
        ('long', 'I64', i64, i64.astype('<i8').tobytes()),
        ('int', 'I32', i32, i32.astype('<i4').tobytes()),
        ('bytes', 'U8', u8, u8.tobytes()),
    ]
    expected = {
        'half': f32_bits(f16.view(np.float16).astype(np.float32)),
        'brain': f32_bits((bf16.astype(np.uint32) << 16).view(np.float32)),
        'single': f32_bits(f32),
        'double': f32_bits(f64.astype(np.float32)),
        'long': f32_bits(i64.astype(np.float32)),
        'int': f32_bits(i32.astype(np.float32)),
    }
    for pad in (False, True):
        path = os.path.join(tmp, 'numpy-%d.safetensors' % pad)
        write_by_hand(path, tensors, {'format': 'pt', 'source': 'numpy'}, pad)
        p = subprocess.run([tool, 'dump', path], capture_output=True, text=True)
        if p.returncode:
            fail.append('st-tool dump %s: %s' % (path, p.stderr))
            continue
        got = {}
        meta = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            if parts[0] == 'meta':
                k, v = line[5:].split('=', 1)
                meta[k] = v
                continue
            got[parts[0]] = (parts[1], parts[2], parts[3:])
        for name, dt, arr, _ in tensors:
            if name not in got:
                fail.append('%s: missing' % name)
                continue
            gdt, gshape, vals = got[name]
            if gdt != dt or gshape != '[' + ','.join(map(str, arr.shape)) + ']':
                fail.append('%s: dtype/shape %s %s' % (name, gdt, gshape))
            if name == 'bytes':
                if vals != ['unsupported']:
                    fail.append('U8 should be reported unsupported')
                continue
            want = ['%08x' % b for b in expected[name]]
            if vals != want:
                bad = next(i for i, (a, b) in enumerate(zip(vals, want)) if a != b) if len(vals) == len(want) else -1
                fail.append('%s (pad=%s): element %d: stsim %s, numpy %s' % (name, pad, bad, vals[bad], want[bad]))
        if meta != {'format': 'pt', 'source': 'numpy'}:
            fail.append('metadata %r' % meta)
    print('reader: %d tensors x 2 layouts compared bit for bit' % len(tensors))


def check_writer(tmp):
    path = os.path.join(tmp, 'stsim.safetensors')
    p = subprocess.run([tool, 'write', path], capture_output=True, text=True)
    if p.returncode:
        fail.append('st-tool write: ' + p.stderr)
        return
    data = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', data[:8])
    if n % 8:
        fail.append('header length %d is not a multiple of 8' % n)
    raw = data[8:8 + n]
    if raw.rstrip(b' ') != raw[:len(raw.rstrip(b' '))] or not raw.rstrip(b' ').endswith(b'}'):
        fail.append('header is not JSON padded with spaces')
    header = json.loads(raw.decode('utf-8'))
    meta = header.pop('__metadata__', None)
    if meta != {'format': 'pt', 'note': 'quote " backslash \\ newline \n tab \t é'}:
        fail.append('metadata %r' % meta)
    if list(json.loads(raw.decode())).index('__metadata__') != 0:
        fail.append('__metadata__ is not first')
    body = data[8 + n:]
    spans = sorted((v['data_offsets'][0], v['data_offsets'][1], k) for k, v in header.items())
    end = 0
    for b, e, k in spans:
        if b != end:
            fail.append('%s does not start where the previous tensor ends' % k)
        end = e
    if end != len(body):
        fail.append('data section %d bytes, tensors cover %d' % (len(body), end))
    for k, v in header.items():
        b, e = v['data_offsets']
        if (8 + n + b) % {'F32': 4, 'I64': 8}[v['dtype']]:
            fail.append('%s is not aligned in the file' % k)
    def arr(name, dt):
        b, e = header[name]['data_offsets']
        return np.frombuffer(body[b:e], dtype=dt).reshape(header[name]['shape'])
    w = arr('w', '<f4')
    if header['w']['dtype'] != 'F32' or not np.array_equal(w, (np.arange(15, dtype=np.float32) * 0.25 - 1).reshape(3, 5)):
        fail.append('w differs')
    emb = arr('emb', '<u4')
    want = [0x7FC00000, 0x80000000, 0x7F800000, 0x00000001, 0xFF800000, 0x3F800000, 0x12345678, 0xDEADBEEF]
    if emb.shape != (2, 2, 2) or list(emb.ravel()) != want:
        fail.append('emb bits differ: %s' % [hex(x) for x in emb.ravel()])
    ids = arr('ids', '<i8')
    if header['ids']['dtype'] != 'I64' or list(ids) != [i * 10**12 - 5 for i in range(4)]:
        fail.append('ids differ: %s' % list(ids))
    print('writer: header, alignment, offsets and %d tensors checked by hand' % len(header))


with tempfile.TemporaryDirectory() as tmp:
    check_reader(tmp)
    check_writer(tmp)
if fail:
    print('FAIL:\n  ' + '\n  '.join(fail))
    sys.exit(1)
print('OK')
