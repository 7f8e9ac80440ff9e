#!/usr/bin/python3
"""Independent reference for stsim's STS evaluator with the bow / bow-idf encoders.

Re-implements, in plain Python + numpy/scipy, SentEval's reading rules
(senteval/sts.py and sick.py as modified by SimCSE) and the two bag-of-words
encoders as defined in docs/evaluation.md, and computes every number of the
report: per task, per subset/split Pearson, Spearman, n; "all" (one
correlation over the concatenation), "mean", "wmean"; the headline table (x100)
and the table as SimCSE prints it (Avg of the rounded values).

It shares no code with the C implementation. Usage:
  sts_reference.py [--data DIR] --out tests/fixtures/sts      # write golden-*.json
  sts_reference.py [--data DIR] --check tests/fixtures/sts    # recompute and compare
DIR is laid out like ../shared/data (default: $STSIM_DATA, else ../shared/data
beside the repository).
"""
import argparse
import io
import json
import math
import os
import sys

import numpy as np
from scipy.stats import pearsonr, spearmanr

TASKS = {
    "STS12": ["MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"],
    "STS13": ["FNWN", "headlines", "OnWN"],
    "STS14": ["deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"],
    "STS15": ["answers-forums", "answers-students", "belief", "headlines", "images"],
    "STS16": ["answer-answer", "headlines", "plagiarism", "postediting", "question-question"],
}
SPLIT_FILES = {
    "STSBenchmark": ("STS/STSBenchmark", ["sts-train.csv", "sts-dev.csv", "sts-test.csv"]),
    "SICKRelatedness": ("SICK", ["SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"]),
}
ORDER = ["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness"]


# ---- reading, as SentEval does it -------------------------------------------------------------

def load_semeval(folder, subset):
    with io.open(os.path.join(folder, "STS.input.%s.txt" % subset), encoding="utf8") as f:
        rows = [l.split("\t") for l in f.read().splitlines()]
    with io.open(os.path.join(folder, "STS.gs.%s.txt" % subset), encoding="utf8") as f:
        raw = f.read().splitlines()
    assert all(len(r) == 2 for r in rows), subset
    assert len(rows) == len(raw), subset
    keep = [i for i, g in enumerate(raw) if g != ""]
    s1 = [rows[i][0].split() for i in keep]
    s2 = [rows[i][1].split() for i in keep]
    gold = [float(raw[i]) for i in keep]
    return s1, s2, gold


def load_columns(path, header, c1, c2, cs):
    s1, s2, gold = [], [], []
    with io.open(path, "r", encoding="utf-8") as f:
        first = True
        for line in f:
            if header and first:
                first = False
                continue
            text = line.strip().split("\t")
            s1.append(text[c1].split())
            s2.append(text[c2].split())
            gold.append(float(text[cs]))
    return s1, s2, gold


def load_task(root, task):
    """[(name, s1 tokens, s2 tokens, gold)] in SentEval's order."""
    if task in TASKS:
        folder = os.path.join(root, "STS", "%s-en-test" % task)
        return [(s,) + load_semeval(folder, s) for s in TASKS[task]]
    sub, files = SPLIT_FILES[task]
    out = []
    for name, fname in zip(["train", "dev", "test"], files):
        path = os.path.join(root, sub, fname)
        if task == "STSBenchmark":
            out.append((name,) + load_columns(path, False, 5, 6, 4))
        else:
            out.append((name,) + load_columns(path, True, 1, 2, 3))
    return out


# ---- the encoders, on token sets ----------------------------------------------------------------

ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def token_set(tokens):
    # The evaluator hands the encoder " ".join(tokens); the encoder splits it again.
    return frozenset(t.translate(ASCII_LOWER) for t in " ".join(tokens).split())


def cos_sets(a, b, weight):
    num = sum(weight(w) ** 2 for w in a & b)
    na = sum(weight(w) ** 2 for w in a)
    nb = sum(weight(w) ** 2 for w in b)
    den = math.sqrt(na) * math.sqrt(nb)
    if den == 0:
        return 0.0  # 0/0 is NaN in numpy, and nan_to_num makes it 0
    return num / den


def score_task(splits, encoder):
    sets = [([token_set(t) for t in s1], [token_set(t) for t in s2]) for _, s1, s2, _ in splits]
    if encoder == "bow":
        weight = lambda w: 1
        info = {}
    else:
        # prepare(): every s1 and s2 of every split, duplicates counted.
        df = {}
        n = 0
        for a_list, b_list in sets:
            for s in a_list + b_list:
                n += 1
                for w in s:
                    df[w] = df.get(w, 0) + 1
        W = {w: int(math.floor(256.0 * math.log(n / d) + 0.5)) for w, d in df.items()}
        weight = W.__getitem__
        info = {"N": n, "vocabulary": len(W), "max_weight": max(W.values())}
    scores = [[cos_sets(a, b, weight) for a, b in zip(a_list, b_list)] for a_list, b_list in sets]
    return scores, info


# ---- aggregation --------------------------------------------------------------------------------

def corr(x, y):
    return float(pearsonr(x, y)[0]), float(spearmanr(x, y)[0])


def evaluate(root, encoder):
    report = {"encoder": encoder, "tasks": {}, "table": {}, "table_printed": {}}
    printed = []
    headline = []
    for task in ORDER:
        splits = load_task(root, task)
        scores, info = score_task(splits, encoder)
        t = {}
        all_sys, all_gold, prs, sprs, ns = [], [], [], [], []
        for (name, _, _, gold), sys_scores in zip(splits, scores):
            p, s = corr(sys_scores, gold)
            t[name] = {"pearson": p, "spearman": s, "n": len(gold)}
            all_sys += sys_scores
            all_gold += gold
            prs.append(p)
            sprs.append(s)
            ns.append(len(gold))
        p, s = corr(all_sys, all_gold)
        t["all"] = {"pearson": p, "spearman": s, "n": len(all_gold)}
        t["mean"] = {"pearson": float(np.average(prs)), "spearman": float(np.average(sprs))}
        t["wmean"] = {"pearson": float(np.average(prs, weights=ns)),
                      "spearman": float(np.average(sprs, weights=ns))}
        if info:
            t["reference_info"] = info
        report["tasks"][task] = t
        value = t["test"]["spearman"] if task in SPLIT_FILES else t["all"]["spearman"]
        report["table"][task] = 100 * value
        report["table_printed"][task] = "%.2f" % (100 * value)
        headline.append(value)
        printed.append(report["table_printed"][task])
    report["table"]["Avg"] = 100 * sum(headline) / len(headline)
    # SimCSE's evaluation.py: Avg of the already-rounded printed values.
    report["table_printed"]["Avg"] = "%.2f" % (sum(float(s) for s in printed) / len(printed))
    return report


def numbers(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, prefix + "/" + k)
    else:
        yield prefix, obj


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.environ.get("STSIM_DATA") or os.path.join(here, "..", "..", "..", "shared", "data")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="folder to write golden-bow.json and golden-bow-idf.json into")
    g.add_argument("--check", help="folder holding golden-*.json to compare against")
    args = ap.parse_args()
    root = os.path.join(args.data, "senteval", "downstream")
    bad_total = 0
    for enc in ["bow", "bow-idf"]:
        bad = 0
        rep = evaluate(root, enc)
        name = "golden-%s.json" % enc
        if args.out:
            tmp = os.path.join(args.out, name + ".tmp")
            with open(tmp, "w") as f:
                json.dump(rep, f, indent=1)
                f.write("\n")
            os.replace(tmp, os.path.join(args.out, name))
            print("%s: %s" % (name, " ".join("%s %s" % kv for kv in rep["table_printed"].items())))
        else:
            with open(os.path.join(args.check, name)) as f:
                want = dict(numbers(json.load(f)))
            got = dict(numbers(rep))
            if set(want) != set(got):
                print("%s: keys differ: %s" % (name, sorted(set(want) ^ set(got))))
                bad += 1
            for k, v in want.items():
                g2 = got.get(k)
                same = (g2 == v) if isinstance(v, (str, int)) else (g2 is not None and abs(g2 - v) <= 1e-12)
                if not same:
                    print("%s: %s: golden %r, recomputed %r" % (name, k, v, g2))
                    bad += 1
            print("%s: %d values compared, %d differ" % (name, len(want), bad))
            bad_total += bad
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
