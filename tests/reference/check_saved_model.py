#!/usr/bin/python3
"""Loads a model folder written by stsim (stsim_model_save) with the plain
PyTorch reference of bert_reference.py and checks that it reproduces the
reference outputs of the fixture it came from.

This closes the loop "a model saved by stsim loads in the reference and
gives the same outputs": it reads only what stsim wrote (config.json keys,
HF tensor names with the bert./roberta./distilbert. prefix, the tied
decoder left out), so a wrong name, key or layout fails here.

    STSIM_SAVE_DIR=/tmp/saved build/tests/encoders/test-model-io -p /model/save/round-trip/bert-tiny
    /usr/bin/python3 tests/reference/check_saved_model.py /tmp/saved/bert-tiny tests/fixtures/models/bert-tiny

Exit status 0 when every output matches within 1e-5 (the saved weights are
the fixture's float32 values, so only float64 round-off remains), 1 otherwise.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
import st_io  # noqa: E402


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    saved, fixture = sys.argv[1], sys.argv[2]
    with open(os.path.join(saved, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    kind = cfg["model_type"]
    tensors, meta = st_io.load(os.path.join(saved, "model.safetensors"))
    p = {k: v.double() for k, v in tensors.items()}
    expect, _ = st_io.load(os.path.join(fixture, "reference.safetensors"))
    ids, mask = expect["input_ids"], expect["attention_mask"]
    print("%s: %d tensors, metadata %s, model_type %s" % (saved, len(p), meta, kind))

    for f in ("vocab.txt",) if kind != "roberta" else ("vocab.json", "merges.txt"):
        a = open(os.path.join(saved, f), "rb").read()
        b = open(os.path.join(fixture, f), "rb").read()
        if a != b:
            print("FAIL: %s differs from the fixture's" % f)
            return 1

    with torch.no_grad():
        if kind == "distilbert":
            out = ref.distilbert_forward(p, cfg, ids, mask)
            pooled = None
        else:
            out = ref.bert_forward(p, cfg, kind, ids, mask)
            pooled = out["pooler_output"]
        got = {"hidden_states.%d" % i: h for i, h in enumerate(out["hidden_states"])}
        got.update(ref.poolers(out["hidden_states"], mask, pooled))
        if "logits" in out:
            got["mlm_logits"] = out["logits"]

    worst = 0.0
    for name in sorted(got):
        if name not in expect:
            continue
        d = (got[name] - expect[name].double()).abs().max().item()
        worst = max(worst, d)
        print("  %-26s max|diff| %.3e" % (name, d))
    missing = [n for n in expect if (n.startswith("hidden_states.") or n.startswith("pool.") or n == "mlm_logits")
               and n not in got]
    if missing:
        print("FAIL: the saved model does not produce %s" % ", ".join(missing))
        return 1
    if worst > 1e-5:
        print("FAIL: max difference %.3e" % worst)
        return 1
    print("OK: max difference %.3e" % worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
