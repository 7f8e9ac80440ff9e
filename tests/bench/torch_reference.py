#!/usr/bin/python3
"""torch_reference.py: the stsim-bench workloads in plain PyTorch.

Dev-time tool (Debian python3-torch 1.13); stsim-bench --compare-torch runs it
once per table cell so that the peak RSS it reports belongs to that cell only.

The computations follow the published code (SimCSE, DiffCSE, RankCSE on HF
transformers 4.2.1), written here in plain torch.nn:
  * HF-style padded batches: every row is padded to the longest row of the
    batch, the additive mask is (1 - m) * -10000, pad query rows are computed;
  * separate query/key/value Linear layers, post-LN BERT layers, erf GELU;
  * encode: eval mode, torch.no_grad, B sentences, CLS vector;
  * simcse: 2B rows ([s1, s1, s2, s2, ...]) in one forward, CLS, MLP
    (dense + tanh), cosine matrix / 0.05, cross-entropy, backward,
    clip_grad_norm_(1.0), AdamW, zero_grad;
  * paper: the simcse branch with DiffCSE's BN projector
    (768->1536 BN ReLU 1536->768 BN(affine=False)), a frozen teacher of the
    same size run every step (eval, no_grad) giving ListNet targets over the
    B sentences, BERT 80/10/10 masking of the 2B rows (collator style), a
    frozen generator of the same size with its MLM head run every step in
    train mode under no_grad, argmax over the vocabulary at EVERY position,
    a discriminator (same size) whose position-0 embedding is replaced by z,
    an electra head Linear(H, 2) and the RTD cross-entropy averaged over all
    2B*L positions (pads included); L = contrast + rank + 0.005 * rtd.

Input: --batches FILE, JSON {"batches": [{"ids": [[...], ...]}, ...]}: the B
sentences of each step as token ids (no padding); the tool pads them itself.
Output: one JSON object on stdout:
  {"impl": "torch", "times": [...], "median": s, "peak_rss_kb": n, ...}

Usage: torch_reference.py --config mini|small|base --workload encode|simcse|paper
                          --threads N --batches FILE [--warmup 1] [--steps 5]
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "mini": dict(layers=4, hidden=256, heads=4, ff=1024),
    "small": dict(layers=4, hidden=512, heads=8, ff=2048),
    "base": dict(layers=12, hidden=768, heads=12, ff=3072),
}
VOCAB = 30522
MAX_POS = 512
CLS_ID, SEP_ID, PAD_ID, MASK_ID, UNK_ID = 101, 102, 0, 103, 100


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word = nn.Embedding(VOCAB, c["hidden"], padding_idx=PAD_ID)
        self.pos = nn.Embedding(MAX_POS, c["hidden"])
        self.tok_type = nn.Embedding(2, c["hidden"])
        self.ln = nn.LayerNorm(c["hidden"], eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, ids, cls_input=None):
        L = ids.shape[1]
        pos = torch.arange(L, device=ids.device).unsqueeze(0)
        types = torch.zeros_like(ids)
        e = self.word(ids) + self.pos(pos) + self.tok_type(types)
        e = self.drop(self.ln(e))
        if cls_input is not None:
            # DiffCSE's modeling_bert: the sentence vector replaces position 0.
            e = torch.cat([cls_input.unsqueeze(1), e[:, 1:]], dim=1)
        return e


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden"]
        self.nh = c["heads"]
        self.dh = H // self.nh
        self.q = nn.Linear(H, H)
        self.k = nn.Linear(H, H)
        self.v = nn.Linear(H, H)
        self.o = nn.Linear(H, H)
        self.ln1 = nn.LayerNorm(H, eps=1e-12)
        self.f1 = nn.Linear(H, c["ff"])
        self.f2 = nn.Linear(c["ff"], H)
        self.ln2 = nn.LayerNorm(H, eps=1e-12)
        self.attn_drop = nn.Dropout(0.1)
        self.drop = nn.Dropout(0.1)

    def split(self, x):
        B, L, _ = x.shape
        return x.view(B, L, self.nh, self.dh).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        B, L, H = x.shape
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + ext_mask
        p = self.attn_drop(F.softmax(s, dim=-1))
        ctx = torch.matmul(p, v).permute(0, 2, 1, 3).contiguous().view(B, L, H)
        h1 = self.ln1(self.drop(self.o(ctx)) + x)
        f = self.drop(self.f2(F.gelu(self.f1(h1))))
        return self.ln2(f + h1)


class Bert(nn.Module):
    def __init__(self, c, mlm_head=False):
        super().__init__()
        self.emb = Embeddings(c)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["layers"])])
        self.mlm = None
        if mlm_head:
            H = c["hidden"]
            self.mlm_dense = nn.Linear(H, H)
            self.mlm_ln = nn.LayerNorm(H, eps=1e-12)
            self.mlm_bias = nn.Parameter(torch.zeros(VOCAB))
            self.mlm = True
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, mask, cls_input=None):
        ext = (1.0 - mask[:, None, None, :].float()) * -10000.0
        x = self.emb(ids, cls_input)
        for layer in self.layers:
            x = layer(x, ext)
        return x

    def mlm_logits(self, h):
        t = self.mlm_ln(F.gelu(self.mlm_dense(h)))
        return F.linear(t, self.emb.word.weight, self.mlm_bias)   # decoder tied to E


def pad_batch(rows):
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def duplicated(rows):
    # SimCSE's collator: [s1, s1, s2, s2, ...]
    out = []
    for r in rows:
        out.append(r)
        out.append(r)
    return out


def cos_matrix(a, b):
    # SimCSE's Similarity: cosine_similarity(x.unsqueeze(1), y.unsqueeze(0), -1)
    return F.cosine_similarity(a.unsqueeze(1), b.unsqueeze(0), dim=-1)


def mask_tokens(ids, mask, prob=0.3):
    # transformers DataCollatorForLanguageModeling.mask_tokens (80/10/10)
    inputs = ids.clone()
    p = torch.full(inputs.shape, prob)
    special = (inputs == CLS_ID) | (inputs == SEP_ID) | (inputs == PAD_ID) | (inputs == UNK_ID) | (inputs == MASK_ID)
    p.masked_fill_(special, 0.0)
    sel = torch.bernoulli(p).bool()
    repl = torch.bernoulli(torch.full(inputs.shape, 0.8)).bool() & sel
    inputs[repl] = MASK_ID
    rnd = torch.bernoulli(torch.full(inputs.shape, 0.5)).bool() & sel & ~repl
    inputs[rnd] = torch.randint(VOCAB, inputs.shape, dtype=torch.long)[rnd]
    return inputs


class SimCSE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = Bert(c)
        self.mlp = nn.Linear(c["hidden"], c["hidden"])

    def step_loss(self, rows):
        ids, mask = pad_batch(duplicated(rows))
        h = self.bert(ids, mask)[:, 0]
        z = torch.tanh(self.mlp(h)).view(len(rows), 2, -1)
        sim = cos_matrix(z[:, 0], z[:, 1]) / 0.05
        return F.cross_entropy(sim, torch.arange(len(rows)))


class Paper(nn.Module):
    def __init__(self, c):
        super().__init__()
        H = c["hidden"]
        self.bert = Bert(c)
        self.proj = nn.Sequential(nn.Linear(H, 2 * H, bias=False), nn.BatchNorm1d(2 * H), nn.ReLU(),
                                  nn.Linear(2 * H, H, bias=False), nn.BatchNorm1d(H, affine=False))
        self.disc = Bert(c)
        self.electra = nn.Linear(H, 2)
        # Frozen parts: a submodule like DiffCSE's generator (train mode, so dropout on).
        self.generator = Bert(c, mlm_head=True)
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.teacher = Bert(c)
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def step_loss(self, rows):
        B = len(rows)
        ids, mask = pad_batch(duplicated(rows))
        h = self.bert(ids, mask)[:, 0]
        z = self.proj(h)
        zz = z.view(B, 2, -1)
        cos = cos_matrix(zz[:, 0], zz[:, 1])
        l_con = F.cross_entropy(cos / 0.05, torch.arange(B))
        # RankCSE ListNet: teacher run every step on the B sentences.
        with torch.no_grad():
            self.teacher.eval()
            tids, tmask = pad_batch(rows)
            t = self.teacher(tids, tmask)[:, 0]
            tsim = cos_matrix(t, t) / 0.05
            eye = torch.eye(B, dtype=torch.bool)
            q = F.softmax(tsim.masked_fill(eye, -float("inf")), dim=-1)
        s = (cos / 0.05).masked_fill(torch.eye(B, dtype=torch.bool), -float("inf"))
        l_rank = -(q * F.log_softmax(s, dim=-1).masked_fill(torch.eye(B, dtype=torch.bool), 0.0)).sum(-1).mean()
        # DiffCSE: mask, generator argmax at every position, discriminator.
        mids = mask_tokens(ids, mask)
        with torch.no_grad():
            g = self.generator.mlm_logits(self.generator(mids, mask)).argmax(-1)
        g[:, 0] = CLS_ID
        labels = (g != ids).long() * mask
        d = self.disc(g * mask, mask, cls_input=z)
        logits = self.electra(d)
        l_rtd = F.cross_entropy(logits.view(-1, 2), labels.view(-1))
        return l_con + 1.0 * l_rank + 0.005 * l_rtd


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--workload", required=True, choices=["encode", "simcse", "paper"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", required=True)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.batches) as f:
        batches = [b["ids"] for b in json.load(f)["batches"]]
    need = a.warmup + a.steps
    if len(batches) < need:
        sys.exit("torch_reference: %s has %d batches, need %d" % (a.batches, len(batches), need))
    c = CONFIGS[a.config]
    rss_before = peak_rss_kb()

    times = []
    if a.workload == "encode":
        model = Bert(c).eval()
        for i in range(need):
            ids, mask = pad_batch(batches[i])
            t0 = time.perf_counter()
            with torch.no_grad():
                model(ids, mask)[:, 0].contiguous()
            times.append(time.perf_counter() - t0)
    else:
        model = SimCSE(c) if a.workload == "simcse" else Paper(c)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        # HF Trainer: AdamW, weight decay 0 (SimCSE/DiffCSE default), clip 1.0.
        opt = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.0)
        for i in range(need):
            t0 = time.perf_counter()
            loss = model.step_loss(batches[i])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=False)
            times.append(time.perf_counter() - t0)
            if not math.isfinite(loss.item()):
                sys.exit("torch_reference: loss is not finite at step %d" % i)
    timed = sorted(times[a.warmup:])
    med = timed[len(timed) // 2] if len(timed) % 2 else 0.5 * (timed[len(timed) // 2 - 1] + timed[len(timed) // 2])
    print(json.dumps({"impl": "torch", "config": a.config, "workload": a.workload, "threads": a.threads,
                      "times": times[a.warmup:], "median": med, "peak_rss_kb": peak_rss_kb(),
                      "rss_before_model_kb": rss_before, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
