#!/usr/bin/python3
"""Reference encoders (BERT, RoBERTa, DistilBERT) in plain PyTorch, and the
encoder fixtures under tests/fixtures/models/.

Written from docs/method.md section 1 (the HF 4.2.1 layer math), without the
transformers library.  Each model is tiny, random and deterministic; its
expected outputs are computed in float64 from the float32 (or F16/BF16)
weights exactly as stored, then stored as float32.

Run from anywhere:  /usr/bin/python3 tests/reference/bert_reference.py
Options: --out DIR (default tests/fixtures/models), --no-check (skip the
independent cross-checks), --quiet.

See tests/reference/README.md for the fixture contents and conventions.
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(TESTS, "fixtures", "models")
REAL_BERT_VOCAB = "/work/shared/data/vocab/bert-base-uncased/vocab.txt"
REAL_ROBERTA_MERGES = "/work/shared/data/vocab/roberta-base/merges.txt"

# The padded batch shared by every encoder fixture: three rows, padded length
# 7, real lengths 5, 7 (the full row, deliberately not first) and 3.
B, L = 3, 7
LENGTHS = [5, 7, 3]

QUIET = False


def log(*a):
    if not QUIET:
        print(*a)


# ---------------------------------------------------------------- configs

BERT_CFG = {
    "architectures": ["BertForMaskedLM"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 64,
    "model_type": "bert",
    "num_attention_heads": 4,
    # 3 layers, not 2: with N = 2 the avg_first_last (layers 1, N) and
    # avg_top2 (layers N-1, N) poolers coincide and could not be told apart.
    "num_hidden_layers": 3,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "vocab_size": 512,
}

ROBERTA_CFG = {
    "architectures": ["RobertaForMaskedLM"],
    "attention_probs_dropout_prob": 0.1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 66,  # 64 real tokens + padding_idx + 1
    "model_type": "roberta",
    "num_attention_heads": 4,
    "num_hidden_layers": 3,
    "pad_token_id": 1,
    "position_embedding_type": "absolute",
    "type_vocab_size": 1,
    "vocab_size": 300,  # set again by the vocabulary builder below
}

DISTILBERT_CFG = {
    "activation": "gelu",
    "architectures": ["DistilBertForMaskedLM"],
    "attention_dropout": 0.1,
    "dim": 64,
    "dropout": 0.1,
    "hidden_dim": 128,
    "initializer_range": 0.02,
    "max_position_embeddings": 64,
    "model_type": "distilbert",
    "n_heads": 4,
    "n_layers": 2,
    "pad_token_id": 0,
    "qa_dropout": 0.1,
    "seq_classif_dropout": 0.2,
    "sinusoidal_pos_embds": False,
    "tie_weights_": True,
    "vocab_size": 512,
}
DISTILBERT_LN_EPS = 1e-12  # hard-coded in HF's DistilBERT


# ---------------------------------------------------------------- vocabularies

def build_bert_vocab(size):
    """A small uncased WordPiece vocabulary cut from the real one.

    Rows 0..103 are the real ones ([PAD]=0, [unused0..98], [UNK]=100,
    [CLS]=101, [SEP]=102, [MASK]=103); then, in the real vocabulary's order,
    the printable-ASCII single characters, then whole words from id 1996 on
    with the ##a..##z / ##0..##9 continuation pieces placed where they occur
    in the real file, until `size` tokens.  Usable for tokenizer tests.
    """
    with open(REAL_BERT_VOCAB, encoding="utf-8") as f:
        real = [line.rstrip("\n") for line in f]
    vocab = real[:104]
    assert vocab[0] == "[PAD]" and vocab[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    singles = [t for t in real[999:1996] if len(t) == 1 and 33 <= ord(t) < 127]
    pieces = {"##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"}
    vocab += singles
    rest = []
    for t in real[1996:]:
        if t in pieces or (t.isascii() and t.isalpha() and t.islower()):
            rest.append(t)
    # Keep every continuation piece, fill the remainder with the first words.
    words_needed = size - len(vocab) - len(pieces)
    kept = []
    for t in rest:
        if t in pieces:
            kept.append(t)
        elif words_needed > 0:
            kept.append(t)
            words_needed -= 1
    vocab += kept
    assert len(vocab) == size and len(set(vocab)) == size, (len(vocab), len(set(vocab)))
    return vocab


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table (byte order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) \
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, [chr(c) for c in cs]))
    return [table[b] for b in range(256)]


def build_roberta_vocab(n_merges):
    """<s>=0 <pad>=1 </s>=2 <unk>=3, the 256 byte symbols in byte order, the
    results of the first n_merges merges of the real roberta-base merges.txt,
    and <mask> last (as in roberta-base, where <mask> is the last id)."""
    with open(REAL_ROBERTA_MERGES, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    assert lines[0].startswith("#version")
    merges = lines[1:1 + n_merges]
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + bytes_to_unicode()
    for m in merges:
        a, b = m.split(" ")
        assert a in tokens and b in tokens, m
        tokens.append(a + b)
    tokens.append("<mask>")
    assert len(set(tokens)) == len(tokens)
    return {t: i for i, t in enumerate(tokens)}, ["#version: 0.2"] + merges


def roberta_vocab_json(vocab):
    """Same shape as the real roberta-base vocab.json: one line, id order,
    raw UTF-8 (not \\u escapes), ", " separators, no final newline."""
    ordered = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    return json.dumps(ordered, ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------- parameters

class Init:
    """Deterministic float32 random values.

    Weights use std 0.1, not HF's 0.02: with 0.02 attention is nearly uniform
    and GELU nearly linear, and a wrong mask or activation would go unseen.
    LayerNorm weights are 1 + N(0, 0.1) so that gamma and beta matter.
    """

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std, mean=0.0):
        return (torch.randn(shape, generator=self.g, dtype=torch.float64) * std + mean).float()


def bert_like_params(cfg, kind, init):
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    p = {}

    def lin(name, n_out, n_in):
        p[name + ".weight"] = init.normal((n_out, n_in), 0.1)
        p[name + ".bias"] = init.normal((n_out,), 0.05)

    def ln(name):
        p[name + ".weight"] = init.normal((H,), 0.1, 1.0)
        p[name + ".bias"] = init.normal((H,), 0.05)

    e = kind + ".embeddings."
    p[e + "word_embeddings.weight"] = init.normal((V, H), 0.1)
    p[e + "position_embeddings.weight"] = init.normal((cfg["max_position_embeddings"], H), 0.1)
    p[e + "token_type_embeddings.weight"] = init.normal((cfg["type_vocab_size"], H), 0.1)
    ln(e + "LayerNorm")
    for layer in range(cfg["num_hidden_layers"]):
        q = "%s.encoder.layer.%d." % (kind, layer)
        lin(q + "attention.self.query", H, H)
        lin(q + "attention.self.key", H, H)
        lin(q + "attention.self.value", H, H)
        lin(q + "attention.output.dense", H, H)
        ln(q + "attention.output.LayerNorm")
        lin(q + "intermediate.dense", I, H)
        lin(q + "output.dense", H, I)
        ln(q + "output.LayerNorm")
    lin(kind + ".pooler.dense", H, H)
    if kind == "bert":
        lin("cls.predictions.transform.dense", H, H)
        ln("cls.predictions.transform.LayerNorm")
        p["cls.predictions.bias"] = init.normal((V,), 0.05)
    else:
        lin("lm_head.dense", H, H)
        ln("lm_head.layer_norm")
        p["lm_head.bias"] = init.normal((V,), 0.05)
    return p


def distilbert_params(cfg, init):
    H, I, V = cfg["dim"], cfg["hidden_dim"], cfg["vocab_size"]
    p = {}

    def lin(name, n_out, n_in):
        p[name + ".weight"] = init.normal((n_out, n_in), 0.1)
        p[name + ".bias"] = init.normal((n_out,), 0.05)

    def ln(name):
        p[name + ".weight"] = init.normal((H,), 0.1, 1.0)
        p[name + ".bias"] = init.normal((H,), 0.05)

    e = "distilbert.embeddings."
    p[e + "word_embeddings.weight"] = init.normal((V, H), 0.1)
    p[e + "position_embeddings.weight"] = init.normal((cfg["max_position_embeddings"], H), 0.1)
    ln(e + "LayerNorm")
    for layer in range(cfg["n_layers"]):
        q = "distilbert.transformer.layer.%d." % layer
        for n in ("q_lin", "k_lin", "v_lin", "out_lin"):
            lin(q + "attention." + n, H, H)
        ln(q + "sa_layer_norm")
        lin(q + "ffn.lin1", I, H)
        lin(q + "ffn.lin2", H, I)
        ln(q + "output_layer_norm")
    lin("vocab_transform", H, H)
    ln("vocab_layer_norm")
    p["vocab_projector.bias"] = init.normal((V,), 0.05)
    return p


# ---------------------------------------------------------------- forward passes

def gelu(x):
    # erf form, as HF 4.2.1 maps hidden_act "gelu".
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def lin(p, name, x):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def layer_norm(p, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps)


def heads(x, nh):
    b, n, h = x.shape
    return x.view(b, n, nh, h // nh).transpose(1, 2)  # [B,nh,L,dh]


def merge(x):
    b, nh, n, dh = x.shape
    return x.transpose(1, 2).reshape(b, n, nh * dh)


def bert_position_ids(kind, ids, cfg):
    if kind == "roberta":
        # method.md 1.3: p_k = m_k * cumsum(m)_k + padding_idx, m = ids != pad.
        pad = cfg["pad_token_id"]
        m = (ids != pad).long()
        return torch.cumsum(m, dim=1) * m + pad
    return torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)


def bert_layer(p, q, x, add_mask, cfg):
    eps, nh = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    dh = x.shape[-1] // nh
    Q = heads(lin(p, q + "attention.self.query", x), nh)
    K = heads(lin(p, q + "attention.self.key", x), nh)
    V = heads(lin(p, q + "attention.self.value", x), nh)
    S = Q @ K.transpose(-1, -2) / math.sqrt(dh) + add_mask[:, None, None, :]
    C = merge(torch.softmax(S, dim=-1) @ V)
    h1 = layer_norm(p, q + "attention.output.LayerNorm", lin(p, q + "attention.output.dense", C) + x, eps)
    f = lin(p, q + "output.dense", gelu(lin(p, q + "intermediate.dense", h1)))
    return layer_norm(p, q + "output.LayerNorm", f + h1, eps)


def bert_forward(p, cfg, kind, ids, mask, hf_padding_idx=False):
    """Eval-mode BertForMaskedLM / RobertaForMaskedLM (plus the checkpoint pooler).

    hf_padding_idx=True reproduces nn.Embedding(padding_idx=pad): identical
    values, but no gradient flows into the padding row of the word (and, for
    RoBERTa, position) table through the gather.
    """
    eps = cfg["layer_norm_eps"]
    pad = cfg["pad_token_id"]
    e = kind + ".embeddings."
    pos = bert_position_ids(kind, ids, cfg)
    types = torch.zeros_like(ids)
    word = F.embedding(ids, p[e + "word_embeddings.weight"], padding_idx=pad if hf_padding_idx else None)
    posv = F.embedding(pos, p[e + "position_embeddings.weight"],
                       padding_idx=pad if (hf_padding_idx and kind == "roberta") else None)
    x = layer_norm(p, e + "LayerNorm", word + posv + F.embedding(types, p[e + "token_type_embeddings.weight"]), eps)
    add_mask = (1.0 - mask.to(x.dtype)) * -10000.0
    hs = [x]
    for layer in range(cfg["num_hidden_layers"]):
        x = bert_layer(p, "%s.encoder.layer.%d." % (kind, layer), x, add_mask, cfg)
        hs.append(x)
    pooled = torch.tanh(lin(p, kind + ".pooler.dense", x[:, 0]))
    out = {"hidden_states": hs, "pooler_output": pooled, "position_ids": pos, "token_type_ids": types}
    head = {"bert": ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"),
            "roberta": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")}[kind]
    if head[2] in p:
        t = layer_norm(p, head[1], gelu(lin(p, head[0], x)), eps)
        out["logits"] = t @ p[e + "word_embeddings.weight"].t() + p[head[2]]  # tied decoder
    return out


def distilbert_forward(p, cfg, ids, mask, hf_padding_idx=False):
    eps, nh = DISTILBERT_LN_EPS, cfg["n_heads"]
    e = "distilbert.embeddings."
    pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
    word = F.embedding(ids, p[e + "word_embeddings.weight"],
                       padding_idx=cfg["pad_token_id"] if hf_padding_idx else None)
    x = layer_norm(p, e + "LayerNorm", word + F.embedding(pos, p[e + "position_embeddings.weight"]), eps)
    hs = [x]
    for layer in range(cfg["n_layers"]):
        q = "distilbert.transformer.layer.%d." % layer
        dh = x.shape[-1] // nh
        Q = heads(lin(p, q + "attention.q_lin", x), nh) / math.sqrt(dh)  # q scaled before the matmul
        K = heads(lin(p, q + "attention.k_lin", x), nh)
        V = heads(lin(p, q + "attention.v_lin", x), nh)
        S = (Q @ K.transpose(-1, -2)).masked_fill((mask == 0)[:, None, None, :], -float("inf"))
        a = lin(p, q + "attention.out_lin", merge(torch.softmax(S, dim=-1) @ V))
        sa = layer_norm(p, q + "sa_layer_norm", a + x, eps)
        f = lin(p, q + "ffn.lin2", gelu(lin(p, q + "ffn.lin1", sa)))
        x = layer_norm(p, q + "output_layer_norm", f + sa, eps)
        hs.append(x)
    t = layer_norm(p, "vocab_layer_norm", gelu(lin(p, "vocab_transform", x)), eps)
    logits = t @ p[e + "word_embeddings.weight"].t() + p["vocab_projector.bias"]
    return {"hidden_states": hs, "logits": logits, "position_ids": pos}


def masked_mean(x, mask):
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1)


def poolers(hs, mask, pooled):
    """method.md 3.4.  The layer-mixing poolers only for BERT/RoBERTa (N = 3;
    the 2-layer DistilBERT generator is never pooled that way)."""
    n = len(hs) - 1
    out = {
        "pool.cls_before_pooler": hs[n][:, 0],
        "pool.avg": masked_mean(hs[n], mask),
    }
    if pooled is not None:
        out["pool.cls"] = pooled
        out["pool.avg_first_last"] = masked_mean((hs[1] + hs[n]) / 2, mask)
        out["pool.avg_top2"] = masked_mean((hs[n - 1] + hs[n]) / 2, mask)
    return out


# ---------------------------------------------------------------- independent cross-checks

def check_layers_against_torch_nn(p, cfg, kind, ids, mask):
    """Re-run each encoder layer with torch.nn.TransformerEncoderLayer (post-LN,
    erf GELU, key-padding mask) loaded with the same weights; a bug in the
    hand-written attention/FFN/LayerNorm would show up as a mismatch."""
    if kind == "distilbert":
        H, nh, I, eps, nl = cfg["dim"], cfg["n_heads"], cfg["hidden_dim"], DISTILBERT_LN_EPS, cfg["n_layers"]
        fwd = distilbert_forward(p, cfg, ids, mask)

        def names(layer):
            q = "distilbert.transformer.layer.%d." % layer
            return (q + "attention.q_lin", q + "attention.k_lin", q + "attention.v_lin", q + "attention.out_lin",
                    q + "sa_layer_norm", q + "ffn.lin1", q + "ffn.lin2", q + "output_layer_norm")
    else:
        H, nh, I, eps, nl = (cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
                             cfg["layer_norm_eps"], cfg["num_hidden_layers"])
        fwd = bert_forward(p, cfg, kind, ids, mask)

        def names(layer):
            q = "%s.encoder.layer.%d." % (kind, layer)
            return (q + "attention.self.query", q + "attention.self.key", q + "attention.self.value",
                    q + "attention.output.dense", q + "attention.output.LayerNorm", q + "intermediate.dense",
                    q + "output.dense", q + "output.LayerNorm")
    worst = 0.0
    for layer in range(nl):
        nq, nk, nv, no, n1, ni, n2, n3 = names(layer)
        t = nn.TransformerEncoderLayer(H, nh, dim_feedforward=I, dropout=0.0, activation="gelu",
                                       layer_norm_eps=eps, batch_first=True, norm_first=False).double()
        t.train()  # dropout is 0; train mode keeps torch off its fused fast path
        with torch.no_grad():
            t.self_attn.in_proj_weight.copy_(torch.cat([p[nq + ".weight"], p[nk + ".weight"], p[nv + ".weight"]]))
            t.self_attn.in_proj_bias.copy_(torch.cat([p[nq + ".bias"], p[nk + ".bias"], p[nv + ".bias"]]))
            t.self_attn.out_proj.weight.copy_(p[no + ".weight"])
            t.self_attn.out_proj.bias.copy_(p[no + ".bias"])
            t.norm1.weight.copy_(p[n1 + ".weight"])
            t.norm1.bias.copy_(p[n1 + ".bias"])
            t.linear1.weight.copy_(p[ni + ".weight"])
            t.linear1.bias.copy_(p[ni + ".bias"])
            t.linear2.weight.copy_(p[n2 + ".weight"])
            t.linear2.bias.copy_(p[n2 + ".bias"])
            t.norm2.weight.copy_(p[n3 + ".weight"])
            t.norm2.bias.copy_(p[n3 + ".bias"])
            y = t(fwd["hidden_states"][layer], src_key_padding_mask=(mask == 0))
        worst = max(worst, (y - fwd["hidden_states"][layer + 1]).abs().max().item())
    if worst > 1e-12:
        raise AssertionError("%s: layer output differs from torch.nn.TransformerEncoderLayer by %g" % (kind, worst))
    return worst


def check_directional_fd(loss_fn, params, grads, seed):
    """Central finite difference of the loss along one random direction over
    all parameters, against sum(grad * direction)."""
    g = torch.Generator().manual_seed(seed)
    dirs = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in params.items()}
    analytic = sum((grads[k] * dirs[k]).sum() for k in params).item()
    eps = 1e-6
    with torch.no_grad():
        lp = loss_fn({k: v + eps * dirs[k] for k, v in params.items()}).item()
        lm = loss_fn({k: v - eps * dirs[k] for k, v in params.items()}).item()
    fd = (lp - lm) / (2 * eps)
    rel = abs(fd - analytic) / max(1.0, abs(analytic))
    if rel > 1e-7:
        raise AssertionError("finite-difference check failed: fd %r analytic %r" % (fd, analytic))
    return rel


# ---------------------------------------------------------------- batch and fixture assembly

def make_batch(gen, lo, hi, bos, eos, pad):
    ids = torch.full((B, L), pad, dtype=torch.int64)
    mask = torch.zeros((B, L), dtype=torch.int64)
    for b, n in enumerate(LENGTHS):
        body = torch.randint(lo, hi, (n - 2,), generator=gen)
        ids[b, :n] = torch.cat([torch.tensor([bos]), body, torch.tensor([eos])])
        mask[b, :n] = 1
    return ids, mask


def convert_names(name, layout):
    """Map a canonical HF name to the name a variant checkpoint stores."""
    if layout == "legacy":
        if name.startswith("bert."):
            name = name[len("bert."):]
        if name.endswith("LayerNorm.weight"):
            name = name[:-len("weight")] + "gamma"
        elif name.endswith("LayerNorm.bias"):
            name = name[:-len("bias")] + "beta"
    return name


def max_abs_report(folder, fname, tensors):
    log("  %s/%s" % (folder, fname))
    for k in sorted(tensors):
        v = tensors[k]
        m = v.double().abs().max().item() if v.numel() else 0.0
        log("    %-62s %-8s %-16s max|v| %.6g" % (k, str(v.dtype).replace("torch.", ""), list(v.shape), m))


def write_json(path, obj):
    st_io.write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def write_text(path, lines):
    st_io.write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))


def build_model_fixture(out_dir, name, kind, cfg, params32, ids, mask, seed, storage="F32",
                        layout="hf", with_grads=True, do_checks=True, tokenizer_files=None):
    """Write config.json, model.safetensors, tokenizer files, reference.safetensors.

    params32: canonical names -> float32 tensors.  storage F16/BF16 rounds the
    weights first; every expected value is computed from the stored values.
    layout "legacy": no 'bert.' prefix, LayerNorm gamma/beta, encoder only.
    """
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    sdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[storage]
    if layout == "legacy":
        # A BertModel checkpoint (as SimCSE's released ones): no MLM head.
        params32 = {k: v for k, v in params32.items() if k.startswith(kind + ".")}
    stored = {k: v.to(sdt) for k, v in params32.items()}
    p64 = {k: v.double().requires_grad_(True) for k, v in stored.items()}

    cfg = dict(cfg)
    if layout == "legacy":
        cfg["architectures"] = ["BertModel"]
    if storage != "F32":
        cfg["torch_dtype"] = {"F16": "float16", "BF16": "bfloat16"}[storage]
    write_json(os.path.join(folder, "config.json"), cfg)
    for fname, lines in (tokenizer_files or {}).items():
        if isinstance(lines, bytes):
            st_io.write_atomic(os.path.join(folder, fname), lines)
        else:
            write_text(os.path.join(folder, fname), lines)

    model_tensors = {convert_names(k, layout): v for k, v in stored.items()}
    st_io.save(os.path.join(folder, "model.safetensors"), model_tensors, {"format": "pt"})

    def forward(pp, hf_pad=False):
        if kind == "distilbert":
            return distilbert_forward(pp, cfg, ids, mask, hf_pad)
        return bert_forward(pp, cfg, kind, ids, mask, hf_pad)

    out = forward(p64)
    hs = out["hidden_states"]
    H = hs[0].shape[-1]
    V = cfg["vocab_size"]
    ref = {"input_ids": ids, "attention_mask": mask, "position_ids": out["position_ids"].contiguous()}
    if "token_type_ids" in out:
        ref["token_type_ids"] = out["token_type_ids"].contiguous()
    for i, h in enumerate(hs):
        ref["hidden_states.%d" % i] = h
    ref.update(poolers(hs, mask, out.get("pooler_output")))
    if "logits" in out:
        ref["mlm_logits"] = out["logits"]

    meta = {
        "generator": "tests/reference/bert_reference.py",
        "model": name,
        "weights_dtype": storage,
        "compute": "float64 from the stored weights, stored as float32, eval mode (no dropout)",
        "batch": "B=%d L=%d real lengths %s, right padded" % (B, L, LENGTHS),
        "attention_mask": "additive (1-mask)*-10000 (DistilBERT: -inf), pad query rows computed normally",
    }
    checks = {}
    if with_grads:
        g = torch.Generator().manual_seed(seed + 7)
        R1 = torch.randn((B, L, H), generator=g, dtype=torch.float64).float()
        R2 = torch.randn((B, H), generator=g, dtype=torch.float64).float() if "pooler_output" in out else None
        R3 = torch.randn((B, L, V), generator=g, dtype=torch.float64).float() if "logits" in out else None
        terms = ["sum(hidden_states.%d * loss.R1)" % (len(hs) - 1)]
        ref["loss.R1"] = R1
        if R2 is not None:
            ref["loss.R2"] = R2
            terms.append("sum(pool.cls * loss.R2)")
        if R3 is not None:
            ref["loss.R3"] = R3
            terms.append("sum(mlm_logits * loss.R3)")

        def loss_fn(pp, hf_pad=False):
            o = forward(pp, hf_pad)
            s = (o["hidden_states"][-1] * R1.double()).sum()
            if R2 is not None:
                s = s + (o["pooler_output"] * R2.double()).sum()
            if R3 is not None:
                s = s + (o["logits"] * R3.double()).sum()
            return s

        loss = loss_fn(p64)
        names = list(p64)
        grads = dict(zip(names, torch.autograd.grad(loss, [p64[k] for k in names])))
        ref["loss"] = loss.detach().reshape(())
        meta["loss"] = " + ".join(terms)
        meta["loss_f64"] = repr(loss.item())
        for k in names:
            ref["grad." + convert_names(k, layout)] = grads[k]
        # nn.Embedding(padding_idx) in HF: the gather adds nothing to the
        # padding row; the tied decoder still does.  Store that row as HF has it.
        hf_loss = loss_fn(p64, hf_pad=True)
        hf_grads = dict(zip(names, torch.autograd.grad(hf_loss, [p64[k] for k in names])))
        pad = cfg["pad_token_id"]
        rows = [kind + ".embeddings.word_embeddings.weight"]
        if kind == "roberta":
            rows.append(kind + ".embeddings.position_embeddings.weight")
        hf_desc = []
        for k in rows:
            diff = (hf_grads[k] - grads[k]).abs().sum(1)
            assert (diff[torch.arange(diff.numel()) != pad] == 0).all(), k
            ref["hf_padding_row_grad." + convert_names(k, layout)] = hf_grads[k][pad]
            hf_desc.append("%s row %d" % (convert_names(k, layout), pad))
        meta["hf_padding_idx_rows"] = ", ".join(hf_desc)
        if do_checks:
            checks["fd_rel"] = check_directional_fd(loss_fn, {k: v.detach() for k, v in p64.items()}, grads, seed + 11)

    if do_checks:
        plain = {k: v.detach() for k, v in p64.items()}
        checks["nn_layer_maxdiff"] = check_layers_against_torch_nn(plain, cfg, kind, ids, mask)

    ref = {k: (v.detach().float() if v.is_floating_point() else v) for k, v in ref.items()}
    st_io.save(os.path.join(folder, "reference.safetensors"), ref, meta)

    # Round trip through the reader: what the C tests will read.
    back, _ = st_io.load(os.path.join(folder, "reference.safetensors"))
    for k, v in ref.items():
        assert torch.equal(back[k], v), k
    back_m, _ = st_io.load(os.path.join(folder, "model.safetensors"))
    for k, v in model_tensors.items():
        assert torch.equal(back_m[k].view(torch.int16) if v.dtype in (torch.float16, torch.bfloat16) else back_m[k],
                           v.view(torch.int16) if v.dtype in (torch.float16, torch.bfloat16) else v), k

    max_abs_report(name, "model.safetensors", model_tensors)
    max_abs_report(name, "reference.safetensors", ref)
    if checks:
        log("    checks: " + ", ".join("%s=%.3g" % kv for kv in sorted(checks.items())))
    return ref


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--verify", action="store_true",
                    help="regenerate into a temporary folder and check --out matches byte for byte")
    args = ap.parse_args()
    if args.verify:
        out = args.out
        args.verify, args.quiet = False, True
        st_io.verify_or_exit(out, lambda tmp: generate(argparse.Namespace(**dict(vars(args), out=tmp))))
        return
    generate(args)


def generate(args):
    global QUIET
    QUIET = args.quiet
    torch.set_num_threads(1)  # fixed reduction order: byte-identical reruns
    torch.use_deterministic_algorithms(True)
    checks = not args.no_check

    bert_vocab = build_bert_vocab(BERT_CFG["vocab_size"])
    rob_vocab, rob_merges = build_roberta_vocab(39)
    ROBERTA_CFG["vocab_size"] = len(rob_vocab)
    assert rob_vocab["<mask>"] == len(rob_vocab) - 1

    # BERT: [CLS] random ids from the word part of the vocab [SEP] [PAD]...
    ids, mask = make_batch(torch.Generator().manual_seed(101), 104, BERT_CFG["vocab_size"], 101, 102, 0)
    bert_p = bert_like_params(BERT_CFG, "bert", Init(1))
    vocab_files = {"vocab.txt": bert_vocab}
    build_model_fixture(args.out, "bert-tiny", "bert", BERT_CFG, bert_p, ids, mask, 1000,
                        do_checks=checks, tokenizer_files=vocab_files)
    # Variants of the same weights: legacy names, F16 and BF16 storage.
    build_model_fixture(args.out, "bert-tiny-legacy", "bert", BERT_CFG, bert_p, ids, mask, 1000,
                        layout="legacy", with_grads=False, do_checks=False, tokenizer_files=vocab_files)
    build_model_fixture(args.out, "bert-tiny-f16", "bert", BERT_CFG, bert_p, ids, mask, 1000,
                        storage="F16", with_grads=False, do_checks=checks, tokenizer_files=vocab_files)
    build_model_fixture(args.out, "bert-tiny-bf16", "bert", BERT_CFG, bert_p, ids, mask, 1000,
                        storage="BF16", with_grads=False, do_checks=checks, tokenizer_files=vocab_files)

    # RoBERTa: <s> ids </s> <pad>...; body ids avoid the 4 specials and <mask>.
    ids, mask = make_batch(torch.Generator().manual_seed(202), 4, len(rob_vocab) - 1, 0, 2, 1)
    rob_p = bert_like_params(ROBERTA_CFG, "roberta", Init(2))
    build_model_fixture(args.out, "roberta-tiny", "roberta", ROBERTA_CFG, rob_p, ids, mask, 2000,
                        do_checks=checks, tokenizer_files={"vocab.json": roberta_vocab_json(rob_vocab), "merges.txt": rob_merges})

    # DistilBERT shares BERT's vocabulary, as distilbert-base-uncased does.
    ids, mask = make_batch(torch.Generator().manual_seed(303), 104, DISTILBERT_CFG["vocab_size"], 101, 102, 0)
    dist_p = distilbert_params(DISTILBERT_CFG, Init(3))
    build_model_fixture(args.out, "distilbert-tiny", "distilbert", DISTILBERT_CFG, dist_p, ids, mask, 3000,
                        do_checks=checks, tokenizer_files=vocab_files)
    log("done: %s" % args.out)


if __name__ == "__main__":
    main()
