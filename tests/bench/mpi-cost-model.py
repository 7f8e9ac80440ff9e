#!/usr/bin/python3
"""The cost model of docs/distributed.md from the measurements that
tests/bench/mpi-cost.sh made in TMP (mpi-cost output, stsim-bench JSON, the
2-rank overlap runs):  mpi-cost-model.py TMP COMPUTE_JSON [--ideal]
(--ideal: eff = 1, per-rank compute exactly T_c(B)/N: an upper bound)

Per step on N ranks with a global batch B split over them (b = B/N each):
  T_N      = T_c(b) + exposed
  T_c(b)   = T_c(64) * (b/64) / eff(b)       eff: measured mini SimCSE sweep
  T_comm   = 2(N-1)/N * bytes / beta + 2(N-1) * alpha           (ring)
  exposed  = T_comm without overlap; with it max(f_end * T_comm, T_comm - T_bwd)
  T_bwd    = 2/3 T_c(b) (a backward is twice its forward)
  f_end    = the share of the gradient that is final only when the backward
             ends (the student's embeddings: used first in the forward)
  speed-up = T_c(B) / T_N, efficiency = speed-up / N.
"""
import json
import re
import sys

V, POS, TYPES = 30522, 512, 2
CONFIGS = {"mini": (4, 256, 1024), "small": (4, 512, 2048), "base": (12, 768, 3072)}
LINKS = [("10 Gbit/s", 1.25e9, 20e-6), ("100 Gbit/s", 12.5e9, 5e-6)]


def bert_floats(layers, h, ff, pooler=True):
    emb = V * h + POS * h + TYPES * h + 2 * h
    layer = 4 * h * h + 4 * h + 2 * h + 2 * h * ff + ff + h + 2 * h
    return emb, emb + layers * layer + (h * h + h if pooler else 0)


def gradient(config, workload):
    """(floats summed per step, floats final only at the end of the backward)"""
    layers, h, ff = CONFIGS[config]
    emb, student = bert_floats(layers, h, ff)
    if workload == "simcse":
        return student, emb
    head = 2 * h * h + 2 * h + 4 * h + 2 * h * h + h + 2 * h   # Linear, BN, Linear, BN
    _, disc = bert_floats(layers, h, ff, pooler=False)
    return student + head + disc + 2 * h + 2, emb


def ring(n, nbytes, beta, alpha):
    return 2 * (n - 1) / n * nbytes / beta + 2 * (n - 1) * alpha


def main():
    tmp, compute_json = sys.argv[1], sys.argv[2]
    ideal = "--ideal" in sys.argv[3:]
    fits = {}
    for np_ in (2, 3):
        try:
            text = open(f"{tmp}/cost-{np_}.txt").read()
        except OSError:
            continue
        m = re.search(r"ring fit stsim\s+alpha = ([\d.]+) us\s+beta = ([\d.]+) GB/s", text)
        if m:
            fits[np_] = (float(m.group(1)) * 1e-6, float(m.group(2)) * 1e9)
    cells = json.load(open(compute_json))["cells"]
    tc = {(c["config"], c["workload"]): c["stsim"]["median"] for c in cells if c.get("batches") == "real"}
    sweep = {}
    for b in (64, 32, 16, 8, 4, 2):
        c = json.load(open(f"{tmp}/batch-{b}.json"))["cells"][0]
        sweep[b] = c["stsim"]["median"]
    eff = {b: (sweep[64] * b / 64) / sweep[b] for b in sweep}

    def t_compute(t64, b):
        e = 1.0 if ideal else eff.get(b, eff[2] if b < 2 else 1.0)
        return t64 * (b / 64) / e

    print("efficiency of a per-rank batch (mini SimCSE, 1 thread; 64 = 1): " +
          ", ".join(f"{b}: {eff[b]:.2f} ({sweep[b]:.3f} s)" for b in sorted(eff, reverse=True)) +
          ("; NOT used (--ideal: eff = 1)" if ideal else ""))
    print(f"link model: ring all-reduce, alpha/beta of the link ({', '.join(f'{n}: {a*1e6:.0f} us, {be/1e9:.2f} GB/s' for n, be, a in LINKS)}); "
          "loopback here (stsim exchange): " +
          "; ".join(f"{n} ranks {a*1e6:.1f} us, {b/1e9:.2f} GB/s" for n, (a, b) in sorted(fits.items())))
    for B, ranks in ((64, (2, 8, 32)), (128, (2, 8, 32, 128))):
        print(f"\nglobal batch {B}: speed-up over one process (efficiency), overlapped exchange; "
              "[T_comm of the ring at N = 8]")
        head = "| config | workload | grad MB | f_end | T_c(B) s |"
        for name, _, _ in LINKS:
            head += "".join(f" {name} N={n} |" for n in ranks)
        print(head)
        print("|" + "---|" * (5 + len(LINKS) * len(ranks)))
        for (config, workload), t64 in sorted(tc.items(), key=lambda x: (list(CONFIGS).index(x[0][0]), x[0][1])):
            floats, end = gradient(config, workload)
            nbytes, f_end = 4 * floats, end / floats
            t1 = t_compute(t64, B)
            row = f"| {config} | {workload} | {nbytes/1e6:.0f} | {f_end:.2f} | {t1:.2f} |"
            for _, beta, alpha in LINKS:
                for n in ranks:
                    tcn = t_compute(t64, B / n)
                    comm = ring(n, nbytes, beta, alpha)
                    exposed = max(f_end * comm, comm - 2 / 3 * tcn)
                    s = t1 / (tcn + exposed)
                    row += f" {s:.2f} ({100*s/n:.0f}%){' [%.2f s]' % comm if n == 8 else ''} |"
            print(row)

    # The check on this machine: 2 ranks x 1 thread against 1 process x 1 thread.
    try:
        text = open(f"{tmp}/overlap.txt").read()
    except OSError:
        return
    runs = []
    for line in text.splitlines():
        m, w = re.search(r"trained (\d+) steps in ([\d.]+)s", line), re.search(r"waited ([\d.]+) s per step", line)
        if m:
            runs.append((m.group(1), m.group(2), w.group(1) if w else None))
    if len(runs) == 3 and 2 in fits:
        (n1, s1, _), (n2, s2, w2), (n3, s3, w3) = runs
        t1, t2, t3 = float(s1) / int(n1), float(s2) / int(n2), float(s3) / int(n3)
        floats, end = gradient("mini", "simcse")
        alpha, beta = fits[2]
        comm = ring(2, 4 * floats, beta, alpha)
        tc32 = t1 * t_compute(1.0, 32) / t_compute(1.0, 64)
        print(f"\ncheck on this machine (bert-mini SimCSE, B = 64, 1 thread per process): 1 process {t1:.3f} s/step; "
              f"2 ranks, exchange after the backward {t2:.3f} s/step (waited {float(w2 or 0):.3f} s), "
              f"overlapped {t3:.3f} s/step (waited {float(w3 or 0):.3f} s)")
        print(f"  model: T_c(32) = {tc32:.3f} s, loopback T_comm = {comm:.4f} s -> predicted {tc32 + comm:.3f} s/step "
              f"after the backward, {tc32 + max(end / floats * comm, comm - 2 / 3 * tc32):.3f} s/step overlapped; "
              f"speed-up predicted {t1 / (tc32 + comm):.2f}, measured {t1 / t2:.2f} (after) and {t1 / t3:.2f} (overlapped)")


main()
