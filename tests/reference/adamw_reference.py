#!/usr/bin/python3
"""Independent reference for stsim's AdamW, clipping and schedule.

Implements method.md section 3.5 from the formulas (HF transformers.AdamW,
correct_bias=True) in float64 numpy, and writes a text fixture that
tests/numerics/test-optim.c replays:

  m <- b1 m + (1-b1) g ;  v <- b2 v + (1-b2) g^2
  step = lr sqrt(1-b2^t) / (1-b1^t)
  p <- p - step m / (sqrt(v) + eps)         (eps on the uncorrected sqrt(v))
  p <- p - lr wd p                          (unless no_decay)
  frozen parameters: skipped entirely, and left out of the gradient norm
  clip: g <- g min(1, max_norm / (norm + 1e-6)), norm over non-frozen grads
  lr_t = lr0 t/W (t < W), else lr0 max(0, (T-t)/(T-W)); t = steps taken before

Usage: /usr/bin/python3 tests/reference/adamw_reference.py > tests/fixtures/numerics/adamw.txt
(Debian's python3-numpy; the file is committed, the C test does not run Python.)
"""
import sys
import numpy as np

LR0, B1, B2, EPS, WD = 1e-3, 0.9, 0.999, 1e-8, 0.01
WARMUP, TOTAL, STEPS, MAX_NORM = 2, 8, 6, 1.0
# name, numel, no_decay, frozen
VIEWS = [("dense.weight", 12, 0, 0), ("dense.bias", 3, 1, 0),
         ("LayerNorm.weight", 4, 1, 0), ("frozen.weight", 4, 0, 1)]


def f32(a):
    """Values the C side can hold exactly."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def lr_at(t):
    if t < WARMUP:
        return LR0 * t / WARMUP
    return LR0 * max(0.0, (TOTAL - t) / (TOTAL - WARMUP))


def main():
    rng = np.random.default_rng(20240611)
    n = sum(v[1] for v in VIEWS)
    # magnitudes in [0.5, 1.5] with random signs: relative errors stay meaningful
    p = f32(rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n))
    frozen = np.zeros(n, dtype=bool)
    decay = np.zeros(n, dtype=bool)
    off = 0
    for name, k, nd, fr in VIEWS:
        frozen[off:off + k] = bool(fr)
        decay[off:off + k] = not nd and not fr
        off += k
    m = np.zeros(n)
    v = np.zeros(n)
    out = sys.stdout
    out.write("# stsim AdamW fixture v1, written by tests/reference/adamw_reference.py\n")
    out.write("config %r %r %r %r %r %d %d %r\n" % (LR0, B1, B2, EPS, WD, WARMUP, TOTAL, MAX_NORM))
    for name, k, nd, fr in VIEWS:
        out.write("view %s %d %d %d\n" % (name, k, nd, fr))
    out.write("init " + " ".join("%.9g" % x for x in p) + "\n")
    for t in range(STEPS):
        # steps 1 and 4 have large gradients so that clipping engages
        scale = 3.0 if t in (1, 4) else 0.05
        g = f32(rng.normal(0.0, scale, n))
        out.write("grad " + " ".join("%.9g" % x for x in g) + "\n")
        live = ~frozen
        norm = float(np.sqrt(np.sum(g[live] ** 2)))
        coef = MAX_NORM / (norm + 1e-6)
        gc = g * min(1.0, coef)
        lr = lr_at(t)
        tt = t + 1
        m[live] = B1 * m[live] + (1 - B1) * gc[live]
        v[live] = B2 * v[live] + (1 - B2) * gc[live] ** 2
        step = lr * np.sqrt(1 - B2 ** tt) / (1 - B1 ** tt)
        p[live] = p[live] - step * m[live] / (np.sqrt(v[live]) + EPS)
        p[decay] = p[decay] - lr * WD * p[decay]
        out.write("lr %.17g\n" % lr)
        out.write("norm %.17g\n" % norm)
        out.write("expect " + " ".join("%.17g" % x for x in p) + "\n")


if __name__ == "__main__":
    main()
