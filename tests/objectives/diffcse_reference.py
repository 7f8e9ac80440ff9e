#!/usr/bin/python3
"""Reference DiffCSE step (method.md 4.2-4.3) on the tiny fixtures, for
tests/objectives/test-diff-predict.c.  Writes
tests/objectives/diffcse-step.safetensors.

Written from method.md, not from the C code: BERT and DistilBERT forwards come
from tests/reference/bert_reference.py (checked there against
torch.nn.TransformerEncoderLayer); the step itself is spelled out below.

  student f = bert-tiny, eval mode (no dropout anywhere, so the C side can
  run the same computation);
  h = CLS state of the 2B view-major rows; z = BN projector(h):
      Linear(64->128, no bias) -> BatchNorm1d(128) -> ReLU ->
      Linear(128->64, no bias) -> BatchNorm1d(64, affine=False),
      batch statistics over all 2B rows, biased variance, eps 1e-5;
  masked ids: fixed here (80/10/10 of a 40% selection; specials never);
  generator G = distilbert-tiny on the masked ids, argmax at every position;
  g[:,0] = CLS; labels = (g != x)*m; discriminator ids = g*m;
  discriminator D = a copy of bert-tiny whose position-0 row after the
  embedding LayerNorm is replaced by z; electra head Linear(64->2);
  L_RTD = mean CE over all 2B*L positions (pads included), and the variant
  sum(m*ce)/sum(m) (pads excluded).

Gradients are exact derivatives (no nn.Embedding padding_idx rule), computed
in float64 from the float32 values stored; a directional finite difference
checks each loss before anything is written.  Deterministic: re-running
writes the same bytes.

Run:  /usr/bin/python3 tests/objectives/diffcse_reference.py [--out FILE]
"""

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "reference"))
import st_io  # noqa: E402
import bert_reference as br  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
DT = torch.float64
B = 3           # sentences
CLS, SEP, PAD, MASK = 101, 102, 0, 103
# Content words per sentence, whole words of the tiny vocabulary (ids 200+).
SENTENCES = [
    ["this", "are", "not", "my", "they"],
    ["one", "which"],
    ["or", "have", "him", "me", "first", "all", "also"],
]
# Student gradients compared by the C test (a few tensors of every kind).
STUDENT_GRADS = [
    "embeddings.word_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.2.output.dense.weight",
    "encoder.layer.2.output.LayerNorm.bias",
]
DISC_GRADS = STUDENT_GRADS + ["embeddings.position_embeddings.weight"]


def load_model(name):
    tensors, _ = st_io.load(os.path.join(TESTS, "fixtures", "models", name, "model.safetensors"))
    return {k: v.to(DT) for k, v in tensors.items()}


def vocab_ids():
    with open(os.path.join(TESTS, "fixtures", "models", "bert-tiny", "vocab.txt"), encoding="utf-8") as f:
        return {w.rstrip("\n"): i for i, w in enumerate(f)}


def make_rows():
    voc = vocab_ids()
    seqs = [[CLS] + [voc[w] for w in s] + [SEP] for s in SENTENCES]
    L = max(len(s) for s in seqs)
    rows = seqs + seqs  # view-major: view 0 then view 1
    ids = torch.full((len(rows), L), PAD, dtype=torch.int64)
    mask = torch.zeros((len(rows), L), dtype=torch.int64)
    for r, s in enumerate(rows):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
    return ids, mask


def make_masked(ids, mask, seed, vocab_size):
    g = torch.Generator().manual_seed(seed)
    out = ids.clone()
    for r in range(ids.shape[0]):
        for k in range(ids.shape[1]):
            if not mask[r, k] or ids[r, k].item() in (CLS, SEP, PAD, MASK, 100):
                continue
            u = torch.rand(3, generator=g, dtype=DT)
            if u[0] >= 0.4:
                continue
            if u[1] < 0.8:
                out[r, k] = MASK
            elif u[1] < 0.9:
                out[r, k] = int(u[2] * vocab_size)
    return out


def bn_train(a, gamma, beta, eps=1e-5):
    mu = a.mean(0)
    var = a.var(0, unbiased=False)
    y = (a - mu) / torch.sqrt(var + eps)
    return y * gamma + beta if gamma is not None else y


def disc_forward(p, cfg, ids, mask, row0):
    """bert_reference.bert_forward with the position-0 row replaced after the
    embedding LayerNorm (method.md 4.2 step 5)."""
    eps = cfg["layer_norm_eps"]
    e = "bert.embeddings."
    pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
    x = br.layer_norm(p, e + "LayerNorm",
                      F.embedding(ids, p[e + "word_embeddings.weight"])
                      + F.embedding(pos, p[e + "position_embeddings.weight"])
                      + F.embedding(torch.zeros_like(ids), p[e + "token_type_embeddings.weight"]), eps)
    x = torch.cat([row0.unsqueeze(1), x[:, 1:]], dim=1)
    add_mask = (1.0 - mask.to(x.dtype)) * -10000.0
    for layer in range(cfg["num_hidden_layers"]):
        x = br.bert_layer(p, "bert.encoder.layer.%d." % layer, x, add_mask, cfg)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "diffcse-step.safetensors"))
    args = ap.parse_args()

    cfg = br.BERT_CFG
    student0 = load_model("bert-tiny")
    gen_p = load_model("distilbert-tiny")
    ids, mask = make_rows()
    n, L = ids.shape
    H = cfg["hidden_size"]

    # Generator: pick the mask seed whose argmax has a clear margin at every
    # position the C side computes (real positions k >= 1), so that float32
    # noise cannot flip it.
    for seed in range(1, 100):
        masked = make_masked(ids, mask, seed, cfg["vocab_size"])
        with torch.no_grad():
            logits = br.distilbert_forward(gen_p, br.DISTILBERT_CFG, masked, mask)["logits"]
        top2 = torch.topk(logits, 2, dim=-1).values
        margin = (top2[..., 0] - top2[..., 1])[:, 1:][mask[:, 1:] == 1].min().item()
        if margin > 1e-3 and (masked != ids).any():
            break
    gen = logits.argmax(-1)
    g = gen.clone()
    g[:, 0] = CLS
    labels = (g != ids).long() * mask
    disc_ids = g * mask

    # Fixed head weights (float32-rounded, then float64).
    rg = torch.Generator().manual_seed(4242)

    def normal(*shape, std=0.1, mean=0.0):
        return (torch.randn(*shape, generator=rg, dtype=DT) * std + mean).float().to(DT)

    def uniform(*shape, bound):
        return ((torch.rand(*shape, generator=rg, dtype=DT) * 2 - 1) * bound).float().to(DT)

    W1, g1, b1, W2 = normal(2 * H, H), normal(2 * H, mean=1.0), normal(2 * H), normal(H, 2 * H)
    We, be = uniform(2, H, bound=1 / math.sqrt(H)), uniform(2, bound=1 / math.sqrt(H))

    def run(include_pads, want_grad=True):
        sp = {k: v.clone().requires_grad_(want_grad) for k, v in student0.items()}
        dp = {k: v.clone().requires_grad_(want_grad) for k, v in student0.items()}
        heads = [t.clone().requires_grad_(want_grad) for t in (W1, g1, b1, W2, We, be)]
        w1, gg1, bb1, w2, we, bbe = heads
        h = br.bert_forward(sp, cfg, "bert", ids, mask)["hidden_states"][-1][:, 0]
        a = F.relu(bn_train(h @ w1.t(), gg1, bb1))
        z = bn_train(a @ w2.t(), None, None)
        if want_grad:
            z.retain_grad()
        last = disc_forward(dp, cfg, disc_ids, mask, z)
        lg = last @ we.t() + bbe
        ce = F.cross_entropy(lg.reshape(-1, 2), labels.reshape(-1), reduction="none").reshape(n, L)
        m = mask.to(DT)
        loss = ce.mean() if include_pads else (ce * m).sum() / m.sum()
        return loss, z, last, sp, dp, heads

    out = {
        "input_ids": ids, "attention_mask": mask, "masked_ids": masked, "generator_ids": gen,
        "labels": labels, "discriminator_ids": disc_ids,
        "bn.w1": W1, "bn.g1": g1, "bn.b1": b1, "bn.w2": W2, "electra.weight": We, "electra.bias": be,
    }
    meta = {"generator": "tests/objectives/diffcse_reference.py", "student": "bert-tiny",
            "generator_model": "distilbert-tiny", "mode": "eval (no dropout)",
            "generator_margin": repr(margin), "mask_seed": str(seed),
            "definition": "z = BN2(W2 relu(BN1(W1 h))); D position-0 row := z after embedding LN; "
                          "loss_include = mean CE over all 2B*L positions; loss_exclude = sum(m ce)/sum(m)"}
    for variant in ("include", "exclude"):
        loss, z, last, sp, dp, heads = run(variant == "include")
        loss.backward()
        # Directional finite difference over the head weights and z's inputs.
        with torch.no_grad():
            rd = torch.Generator().manual_seed(7)
            dirs = [torch.randn(t.shape, generator=rd, dtype=DT) for t in (W1, g1, b1, W2, We, be)]
            dd = sum((t.grad * d).sum() for t, d in zip(heads, dirs)).item()
            eps = 1e-6
            saved = (W1.clone(), g1.clone(), b1.clone(), W2.clone(), We.clone(), be.clone())
            for t, d in zip((W1, g1, b1, W2, We, be), dirs):
                t += eps * d
            lp = run(variant == "include", False)[0].item()
            for t, d in zip((W1, g1, b1, W2, We, be), dirs):
                t -= 2 * eps * d
            lm = run(variant == "include", False)[0].item()
            for t, s in zip((W1, g1, b1, W2, We, be), saved):
                t.copy_(s)
            fd = (lp - lm) / (2 * eps)
            rel = abs(fd - dd) / max(abs(dd), 1e-30)
            print("%s: loss %.12g, directional fd %.12g vs %.12g (rel %.2e)" % (variant, loss.item(), fd, dd, rel))
            if rel > 1e-6:
                sys.exit("finite-difference check failed")
        p = variant + "."
        out[p + "loss"] = loss.detach()
        out[p + "grad.z"] = z.grad
        for name, t in zip(("bn.w1", "bn.g1", "bn.b1", "bn.w2", "electra.weight", "electra.bias"), heads):
            out[p + "grad." + name] = t.grad
        for name in STUDENT_GRADS:
            out[p + "grad.student." + name] = sp["bert." + name].grad
        for name in DISC_GRADS:
            out[p + "grad.discriminator." + name] = dp["bert." + name].grad
        if variant == "include":
            out["z"] = z.detach()
            out["discriminator_last"] = last.detach()
        meta[p + "loss_f64"] = repr(loss.item())
    tensors = {k: (v if v.dtype == torch.int64 else v.detach().float()) for k, v in out.items()}
    print("labels: %d replaced of %d real positions; margin %.4g; mask seed %d"
          % (labels.sum().item(), mask.sum().item(), margin, seed))
    st_io.save(args.out, tensors, meta)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
