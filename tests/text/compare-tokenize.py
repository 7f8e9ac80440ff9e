#!/usr/bin/env python3
"""Differential test: stsim-tokenize against Hugging Face's Rust tokenizers.

    compare-tokenize.py --tool PATH/stsim-tokenize (--wordpiece VOCAB_TXT | --bpe VOCAB_JSON MERGES_TXT)
                        (--sts DATA_DIR | --file PATH | --codepoints | --random N)
                        [--max-len N] [--ref ref-tokenize.js]

Builds the input lines, runs both stsim-tokenize and the reference runner
tests/reference/tokenizers/ref-tokenize.js (node) on them, and compares the
outputs line by line. On a difference it prints the line number, the input
line (repr) and both outputs, and exits 1. Exit 77 (meson: skipped) when node
or the npm package `tokenizers` is not installed.

Inputs:
  --sts DIR       every sentence of STS-B train/dev/test and SICK
                  train/trial/test_annotated under DIR/senteval/downstream
  --file PATH     the lines of PATH, byte for byte (split on '\\n' only)
  --codepoints    every Unicode scalar value but '\\n', alone and in context
  --random N      N lines of random code points (fixed seed), weighted toward
                  the hard classes: marks, CJK, punctuation, spaces, astral
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REF = os.path.join(HERE, '..', 'reference', 'tokenizers', 'ref-tokenize.js')


def sts_lines(data):
    root = os.path.join(data, 'senteval', 'downstream')
    out = []
    for split in ('train', 'dev', 'test'):
        path = os.path.join(root, 'STS', 'STSBenchmark', 'sts-%s.csv' % split)
        with open(path, 'rb') as f:
            rows = f.read().split(b'\n')
        n = 0
        for i, row in enumerate(rows):
            if not row:
                continue
            cols = row.split(b'\t')
            if len(cols) < 7:
                sys.exit('%s:%d: expected at least 7 tab-separated columns' % (path, i + 1))
            out += [cols[5], cols[6]]
            n += 1
        print('%s: %d pairs' % (os.path.basename(path), n))
    for name in ('SICK_train.txt', 'SICK_trial.txt', 'SICK_test_annotated.txt'):
        path = os.path.join(root, 'SICK', name)
        with open(path, 'rb') as f:
            rows = f.read().split(b'\n')
        n = 0
        for i, row in enumerate(rows[1:]):
            if not row.strip():
                continue
            cols = row.split(b'\t')
            if len(cols) < 5:
                sys.exit('%s:%d: expected 5 tab-separated columns' % (path, i + 2))
            out += [cols[1], cols[2]]
            n += 1
        print('%s: %d pairs' % (name, n))
    return out


def codepoint_lines():
    out = []
    for cp in range(0x110000):
        if cp == 0x0A or 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp).encode('utf-8')
        # alone; inside a word; after a decomposable capital (NFD, mark
        # ordering, lowercase); between spaces
        out += [c, b'x' + c + b'x', '\u00c9'.encode() + c + b'a', b'a ' + c + b' b']
    return out


def random_lines(n):
    rng = random.Random(20240229)
    pools = [
        (30, lambda: rng.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')),
        (10, lambda: rng.choice(' \t\r  ')),
        (8, lambda: rng.choice('.,;:!?\'"()[]{}<>-_/\\@#$%^&*+=~`|')),
        (8, lambda: chr(rng.randint(0xC0, 0x24F))),
        (8, lambda: chr(rng.randint(0x300, 0x36F))),            # combining marks
        (5, lambda: chr(rng.randint(0x370, 0x52F))),            # Greek, Cyrillic
        (5, lambda: chr(rng.randint(0x4E00, 0x9FFF))),          # CJK
        (5, lambda: chr(rng.randint(0x1F300, 0x1FAFF))),        # emoji
        (4, lambda: rng.choice(['\u200b', '\u200d', '\u00ad', '\ufeff', '\u2028', '\u00a0', '\x00',
                                '\x7f', '\x0b', '\u0085', '\ufffd', '[MASK]', '[CLS]', '[SEP]',
                                '[PAD]', '[UNK]', '<mask>', '<s>', '</s>', ' <mask>'])),
        (8, lambda: chr(rng.choice([rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))),
    ]
    weights = [w for w, _ in pools]
    out = []
    for _ in range(n):
        k = rng.randint(0, 40)
        s = ''.join(rng.choices(pools, weights)[0][1]() for _ in range(k))
        out.append(s.replace('\n', ' ').encode('utf-8'))
    return out


def run(cmd, data):
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit('FAIL: %s exited %d:\n%s' % (' '.join(cmd), p.returncode, p.stderr.decode('utf-8', 'replace')))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tool', required=True)
    ap.add_argument('--wordpiece')
    ap.add_argument('--bpe', nargs=2)
    ap.add_argument('--sts')
    ap.add_argument('--file')
    ap.add_argument('--codepoints', action='store_true')
    ap.add_argument('--random', type=int)
    ap.add_argument('--max-len', type=int, default=0)
    ap.add_argument('--ref', default=DEFAULT_REF)
    a = ap.parse_args()

    node = shutil.which('node') or shutil.which('nodejs')
    modules = os.path.join(os.path.dirname(a.ref), 'node_modules', 'tokenizers')
    if not node or not os.path.isdir(modules):
        print('SKIP: node or the npm package tokenizers is missing (.ci/install-deps installs them)')
        sys.exit(77)

    if a.sts:
        lines = sts_lines(a.sts)
    elif a.file:
        with open(a.file, 'rb') as f:
            data = f.read()
        lines = data.split(b'\n')
        if data.endswith(b'\n'):
            lines.pop()
    elif a.codepoints:
        lines = codepoint_lines()
    elif a.random:
        lines = random_lines(a.random)
    else:
        sys.exit('one of --sts, --file, --codepoints, --random is required')
    data = b''.join(l + b'\n' for l in lines)

    with tempfile.TemporaryDirectory() as tmp:
        if a.wordpiece:
            model = os.path.join(tmp, 'model')
            os.mkdir(model)
            os.symlink(os.path.abspath(a.wordpiece), os.path.join(model, 'vocab.txt'))
            ref_args = ['--wordpiece', a.wordpiece]
        elif a.bpe:
            model = os.path.join(tmp, 'model')
            os.mkdir(model)
            os.symlink(os.path.abspath(a.bpe[0]), os.path.join(model, 'vocab.json'))
            os.symlink(os.path.abspath(a.bpe[1]), os.path.join(model, 'merges.txt'))
            ref_args = ['--bpe'] + a.bpe
        else:
            sys.exit('one of --wordpiece, --bpe is required')
        extra = ['--max-len', str(a.max_len)] if a.max_len else []
        ours = run([a.tool, '--model', model] + extra, data).split(b'\n')
        ref = run([node, a.ref] + ref_args + extra, data).split(b'\n')

    if len(ours) != len(ref):
        sys.exit('FAIL: stsim-tokenize wrote %d lines, the reference %d (input: %d lines)'
                 % (len(ours) - 1, len(ref) - 1, len(lines)))
    for i, (x, y) in enumerate(zip(ours, ref)):
        if x != y:
            print('FAIL: first difference at input line %d of %d' % (i + 1, len(lines)))
            print('  input:     %r' % lines[i].decode('utf-8', 'backslashreplace'))
            print('  stsim:     %s' % x.decode())
            print('  reference: %s' % y.decode())
            n_diff = sum(1 for p, q in zip(ours, ref) if p != q)
            print('  %d differing lines in total' % n_diff)
            sys.exit(1)
    n_ids = sum(len(l.split()) for l in ours)
    print('OK: %d lines, %d ids, identical to the reference' % (len(lines), n_ids))


if __name__ == '__main__':
    main()
