#!/usr/bin/python3
"""Reference objective losses and their input gradients, written from
docs/method.md sections 3.3, 3.8, 4.2-4.3 and 5.4-5.6, into
tests/fixtures/losses/*.safetensors.

Every input is drawn at random, rounded to float32 (what the fixture stores),
and the loss is computed in float64 from those rounded values with autograd;
outputs are stored as float32.  Each loss is also checked against a second,
independent computation (closed-form gradients from method.md, scipy, or
torch.nn modules) and against a finite difference before anything is written.

Run from anywhere:  /usr/bin/python3 tests/reference/loss_reference.py
Options: --out DIR (default tests/fixtures/losses), --quiet.
See tests/reference/README.md for the conventions the C tests follow.
"""

import argparse
import math
import os
import sys

import numpy as np
import scipy.spatial.distance
import scipy.special
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "fixtures", "losses")
QUIET = False
COS_EPS = 1e-8  # PyTorch CosineSimilarity default


def log(*a):
    if not QUIET:
        print(*a)


# ---------------------------------------------------------------- helpers

class Rand:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, *shape, std=1.0, mean=0.0):
        """float32-representable values, returned as float32."""
        return (torch.randn(shape, generator=self.g, dtype=torch.float64) * std + mean).float()

    def ints(self, lo, hi, *shape):
        return torch.randint(lo, hi, shape, generator=self.g)

    def uniform(self, *shape):
        return torch.rand(shape, generator=self.g, dtype=torch.float64)


def cos_matrix(a, b):
    """cos(a_i, b_j) = a_i.b_j / max(|a_i| |b_j|, 1e-8)."""
    na = a.norm(dim=1, keepdim=True)
    nb = b.norm(dim=1, keepdim=True)
    return (a @ b.t()) / torch.clamp(na * nb.t(), min=COS_EPS)


def assert_close(what, a, b, tol=1e-10):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    err = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
    if not err <= tol:
        raise AssertionError("%s: independent check differs by %g" % (what, err))
    return err


def directional_fd(fn, inputs, diff, grads, seed):
    """Central difference along one random direction over all differentiable
    inputs against sum(grad * direction)."""
    g = torch.Generator().manual_seed(seed)
    dirs = {k: torch.randn(inputs[k].shape, generator=g, dtype=torch.float64) for k in diff}
    analytic = sum((grads[k] * dirs[k]).sum().item() for k in diff)
    h = 1e-6
    with torch.no_grad():
        plus = dict(inputs)
        minus = dict(inputs)
        for k in diff:
            plus[k] = inputs[k] + h * dirs[k]
            minus[k] = inputs[k] - h * dirs[k]
        fd = (fn(plus)["loss"].item() - fn(minus)["loss"].item()) / (2 * h)
    rel = abs(fd - analytic) / max(1.0, abs(analytic))
    if rel > 1e-7:
        raise AssertionError("finite difference %r vs analytic %r" % (fd, analytic))
    return rel


class Writer:
    def __init__(self, out):
        self.out = out
        self.summary = []

    def case(self, name, inputs, fn, diff, meta, check=None):
        """inputs: name -> float32 / int64 tensors (as stored).  fn(x64) returns
        a dict with "loss" and any intermediate outputs worth storing.
        diff: the inputs the loss is differentiated against."""
        x = {}
        for k, v in inputs.items():
            if v.is_floating_point():
                assert v.dtype == torch.float32, k
                x[k] = v.double().requires_grad_(k in diff)
            else:
                x[k] = v
        out = fn(x)
        grads = dict(zip(diff, torch.autograd.grad(out["loss"], [x[k] for k in diff])))
        checks = {"fd_rel": directional_fd(fn, {k: v.detach() if v.is_floating_point() else v
                                                 for k, v in x.items()}, diff, grads, hash_seed(name))}
        if check is not None:
            checks["independent_rel"] = check({k: v.detach() if v.is_floating_point() else v
                                               for k, v in x.items()},
                                              {k: v.detach() for k, v in out.items()}, grads)
        tensors = dict(inputs)
        for k, v in out.items():
            tensors[k] = v.detach().float() if v.is_floating_point() else v
        tensors["loss"] = out["loss"].detach().reshape(()).float()
        for k in diff:
            tensors["grad." + k] = grads[k].float()
        md = {"generator": "tests/reference/loss_reference.py", "case": name,
              "loss_f64": repr(out["loss"].item()),
              "compute": "float64 from the stored float32 inputs; results stored as float32",
              "differentiable_inputs": ", ".join(diff)}
        md.update(meta)
        path = os.path.join(self.out, name + ".safetensors")
        st_io.save(path, tensors, md)
        back, _ = st_io.load(path)
        for k, v in tensors.items():
            assert torch.equal(back[k], v), k
        log("  %s.safetensors  loss %.9g  (%s)" % (name, out["loss"].item(),
                                                  ", ".join("%s %.2g" % kv for kv in sorted(checks.items()))))
        for k in sorted(tensors):
            v = tensors[k]
            m = v.double().abs().max().item() if v.numel() else 0.0
            log("    %-28s %-8s %-14s max|v| %.6g" % (k, str(v.dtype).replace("torch.", ""), list(v.shape), m))
        self.summary.append((name, out["loss"].item()))


def hash_seed(name):
    # Stable across runs (Python's hash() of str is salted).
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) % 100003


def scalar(v):
    return torch.tensor(v, dtype=torch.float32)


# ---------------------------------------------------------------- InfoNCE (3.3, 3.8)

def infonce_inputs(r, B, H, noise):
    z1 = r.normal(B, H)
    # Positives near their anchors; noise sets how peaked the softmax rows are
    # (at tau = 0.05 too little noise makes them one-hot and the loss ~0).
    z2 = (z1.double() + noise * r.normal(B, H).double()).float()
    return z1, z2


def infonce_fn(symmetric):
    def fn(x):
        tau = x["tau"].item()
        S = cos_matrix(x["z1"], x["z2"]) / tau
        target = torch.arange(S.shape[0])
        loss = F.cross_entropy(S, target)
        if symmetric:
            loss = 0.5 * (loss + F.cross_entropy(S.t(), target))
        return {"loss": loss, "logits": S}
    return fn


def cos_backward(z1, z2, dC):
    """Closed-form chain through C = cos(z1_i, z2_j) (method.md 3.3):
    dcos/du = v/(|u||v|) - cos u/|u|^2."""
    n1, n2 = z1.norm(dim=1), z2.norm(dim=1)
    C = cos_matrix(z1, z2)
    g1 = torch.zeros_like(z1)
    g2 = torch.zeros_like(z2)
    for i in range(z1.shape[0]):
        for j in range(z2.shape[0]):
            u, v = z1[i], z2[j]
            g1[i] += dC[i, j] * (v / (n1[i] * n2[j]) - C[i, j] * u / n1[i] ** 2)
            g2[j] += dC[i, j] * (u / (n1[i] * n2[j]) - C[i, j] * v / n2[j] ** 2)
    return g1, g2


def infonce_check(symmetric):
    def check(x, out, grads):
        S = out["logits"]
        B = S.shape[0]
        sm = torch.softmax(S, 1)
        eye = torch.eye(B, dtype=S.dtype)
        # Loss from its definition: mean of -S_ii + log sum_j exp(S_ij).
        lse = np.log(np.exp(S.numpy()).sum(1))
        loss = np.mean(lse - np.diag(S.numpy()))
        dS = (sm - eye) / B
        if symmetric:
            lse_t = np.log(np.exp(S.numpy().T).sum(1))
            loss = 0.5 * (loss + np.mean(lse_t - np.diag(S.numpy())))
            dS = 0.5 * (dS + ((torch.softmax(S.t(), 1) - eye) / B).t())
        e = assert_close("infonce loss", out["loss"], loss)
        g1, g2 = cos_backward(x["z1"], x["z2"], dS / x["tau"].item())
        e = max(e, assert_close("infonce dz1", grads["z1"], g1), assert_close("infonce dz2", grads["z2"], g2))
        return e
    return check


def sup_fn(x):
    tau, w = x["tau"].item(), x["hard_negative_weight"].item()
    B = x["z1"].shape[0]
    S = torch.cat([cos_matrix(x["z1"], x["z2"]), cos_matrix(x["z1"], x["z3"])], dim=1) / tau
    bump = torch.zeros_like(S)
    bump[torch.arange(B), B + torch.arange(B)] = w  # log-weight on the row's own hard negative
    S = S + bump
    return {"loss": F.cross_entropy(S, torch.arange(B)), "logits": S}


def sup_check(x, out, grads):
    S = out["logits"].numpy()
    B = S.shape[0]
    loss = np.mean(scipy.special.logsumexp(S, axis=1) - S[np.arange(B), np.arange(B)])
    return assert_close("sup loss", out["loss"], loss)


# ---------------------------------------------------------------- teachers and rankings (5.3-5.6)

def teacher_scores(t1, t2, alpha, tau2):
    T = alpha * cos_matrix(t1, t1) / tau2
    if t2 is not None:
        T = T + (1 - alpha) * cos_matrix(t2, t2) / tau2
    return T


def listnet_fn(x):
    tau3 = x["tau3"].item()
    T = x["teacher_scores"]
    S = cos_matrix(x["z1"], x["z2"]) / tau3
    B = S.shape[0]
    diag = torch.eye(B, dtype=torch.bool)
    q = torch.softmax(T.masked_fill(diag, -float("inf")), 1)
    logp = torch.log_softmax(S.masked_fill(diag, -float("inf")), 1)
    terms = -(q * logp.masked_fill(diag, 0.0))
    loss = terms.sum() / q.sum()
    return {"loss": loss, "student_logits": S, "p": logp.exp(), "q": q}


def listnet_check(x, out, grads):
    # Gradient w.r.t. the student logits: (p - q)/B off the diagonal.
    S = out["student_logits"].clone().requires_grad_(True)
    B = S.shape[0]
    p, q = out["p"], out["q"]
    loss = 0.0
    for i in range(B):
        for j in range(B):
            if i != j:
                loss -= q[i, j].item() * math.log(p[i, j].item())
    e = assert_close("listnet loss", out["loss"], loss / B)
    dS = (p - q) / B
    dS.fill_diagonal_(0.0)
    g1, g2 = cos_backward(x["z1"], x["z2"], dS / x["tau3"].item())
    return max(e, assert_close("listnet dz1", grads["z1"], g1), assert_close("listnet dz2", grads["z2"], g2))


def listmle_permutation(T):
    """pi_i: the diagonal first, then descending teacher score, ties by
    ascending column index.  Decided on the float32 values the fixture stores."""
    T = T.float()
    B = T.shape[0]
    perm = torch.empty((B, B), dtype=torch.int64)
    for i in range(B):
        others = sorted((j for j in range(B) if j != i), key=lambda j: (-T[i, j].item(), j))
        perm[i] = torch.tensor([i] + others)
    return perm


def listmle_fn(community):
    def fn(x):
        tau3 = x["tau3"].item()
        S = cos_matrix(x["z1"], x["z2"]) / tau3
        ls = torch.gather(S, 1, x["permutation"])  # student logits in teacher order
        if community:
            # allRank-style as executed by the community code: subtract the
            # row max (gradient flows through it), log(suffix sum + 1e-7).
            ls = ls - ls.max(dim=1, keepdim=True).values
            suffix = torch.flip(torch.cumsum(torch.flip(ls.exp(), [1]), 1), [1])
            rows = (torch.log(suffix + 1e-7) - ls).sum(1)
        else:
            rows = (torch.flip(torch.logcumsumexp(torch.flip(ls, [1]), 1), [1]) - ls).sum(1)
        return {"loss": rows.mean(), "student_logits": S, "row_losses": rows}
    return fn


def listmle_check(x, out, grads):
    S = out["student_logits"]
    perm = x["permutation"]
    B = S.shape[0]
    tau3 = x["tau3"].item()
    total = 0.0
    dS = torch.zeros_like(S)
    for i in range(B):
        l = [S[i, perm[i, k]].item() for k in range(B)]
        C = [sum(math.exp(v) for v in l[k:]) for k in range(B)]
        total += sum(math.log(C[k]) - l[k] for k in range(B))
        for k in range(B):
            # method.md 5.5: -1 + sum_{m<=k} exp(l_k)/C_m
            dS[i, perm[i, k]] = (-1.0 + sum(math.exp(l[k]) / C[m] for m in range(k + 1))) / B
    e = assert_close("listmle loss", out["loss"], total / B)
    g1, g2 = cos_backward(x["z1"], x["z2"], dS / tau3)
    return max(e, assert_close("listmle dz1", grads["z1"], g1), assert_close("listmle dz2", grads["z2"], g2))


def listmle_community_check(x, out, grads):
    S = out["student_logits"].numpy()
    perm = x["permutation"].numpy()
    total = 0.0
    for i in range(S.shape[0]):
        l = S[i, perm[i]]
        l = l - l.max()
        total += sum(math.log(np.exp(l[k:]).sum() + 1e-7) - l[k] for k in range(len(l)))
    return assert_close("listmle community loss", out["loss"], total / S.shape[0])


def consistency_fn(community):
    def fn(x):
        tau1 = x["tau1"].item()
        S = cos_matrix(x["z1"], x["z2"])
        logP = torch.log_softmax(S / tau1, 1)
        logQ = torch.log_softmax(S.t() / tau1, 1)
        P, Q = logP.exp(), logQ.exp()
        B = S.shape[0]
        if community:
            # As executed (method.md 5.6): log M clamped from below at 1e-7, so
            # every entry of it is 1e-7; KLDivLoss(batchmean, log_target).
            logM = torch.log(0.5 * (P + Q)).clamp(min=1e-7)
            loss = 0.5 * (F.kl_div(logM, logP, reduction="batchmean", log_target=True)
                          + F.kl_div(logM, logQ, reduction="batchmean", log_target=True))
        else:
            logM = torch.log(0.5 * (P + Q))
            loss = (0.5 * (P * (logP - logM)).sum() + 0.5 * (Q * (logQ - logM)).sum()) / B
        return {"loss": loss, "P": P, "Q": Q}
    return fn


def consistency_check(community):
    def check(x, out, grads):
        P, Q = out["P"].numpy(), out["Q"].numpy()
        B = P.shape[0]
        if community:
            ref = 0.5 * ((P * np.log(P)).sum() + (Q * np.log(Q)).sum()) / B - 1e-7
        else:
            # scipy returns sqrt(JSD) (natural log by default).
            ref = np.mean([scipy.spatial.distance.jensenshannon(P[i], Q[i]) ** 2 for i in range(B)])
        return assert_close("consistency loss", out["loss"], ref, tol=1e-9)
    return check


# ---------------------------------------------------------------- DiffCSE (4.2, 4.3)

def projector_modules(x):
    H2, H = x["W1"].shape
    lin1 = nn.Linear(H, H2, bias=False).double()
    bn1 = nn.BatchNorm1d(H2, eps=1e-5, momentum=0.1, affine=True).double()
    lin2 = nn.Linear(H2, H, bias=False).double()
    bn2 = nn.BatchNorm1d(H, eps=1e-5, momentum=0.1, affine=False).double()
    for m in (lin1, bn1, lin2, bn2):
        m.train()
    # Use the fixture's tensors themselves as the parameters (keeps autograd).
    del lin1.weight, bn1.weight, bn1.bias, lin2.weight
    lin1.weight = x["W1"]
    bn1.weight = x["bn1_gamma"]
    bn1.bias = x["bn1_beta"]
    lin2.weight = x["W2"]
    return lin1, bn1, lin2, bn2


def projector_forward(x):
    lin1, bn1, lin2, bn2 = projector_modules(x)
    z = bn2(lin2(torch.relu(bn1(lin1(x["h"])))))
    stats = {"bn1_running_mean": bn1.running_mean, "bn1_running_var": bn1.running_var,
             "bn2_running_mean": bn2.running_mean, "bn2_running_var": bn2.running_var}
    return z, stats


def projector_fn(x):
    z, stats = projector_forward(x)
    out = {"loss": (z * x["R"]).sum(), "z": z}
    out.update(stats)
    return out


def bn_manual(a, gamma, beta, eps=1e-5):
    mu = a.mean(0)
    var = a.var(0, unbiased=False)
    xhat = (a - mu) / torch.sqrt(var + eps)
    y = xhat * gamma + beta if gamma is not None else xhat
    return y, xhat, var


def bn_manual_backward(dy, xhat, var, gamma, eps=1e-5):
    """method.md 4.3: dx = (N dxhat - sum dxhat - xhat sum(dxhat xhat)) / (N sqrt(var+eps))."""
    N = dy.shape[0]
    dxhat = dy * gamma if gamma is not None else dy
    return (N * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0)) / (N * torch.sqrt(var + eps))


def projector_check(x, out, grads):
    h, W1, W2, g1, b1, R = x["h"], x["W1"], x["W2"], x["bn1_gamma"], x["bn1_beta"], x["R"]
    a1 = h @ W1.t()
    y1, xh1, v1 = bn_manual(a1, g1, b1)
    r = torch.relu(y1)
    a2 = r @ W2.t()
    z, xh2, v2 = bn_manual(a2, None, None)
    e = assert_close("projector z", out["z"], z)
    da2 = bn_manual_backward(R, xh2, v2, None)
    dW2 = da2.t() @ r
    dy1 = (da2 @ W2) * (y1 > 0)
    dg1, db1 = (dy1 * xh1).sum(0), dy1.sum(0)
    da1 = bn_manual_backward(dy1, xh1, v1, g1)
    dW1, dh = da1.t() @ h, da1 @ W1
    N = h.shape[0]
    e = max(e, assert_close("bn1 running var", out["bn1_running_var"], 0.9 + 0.1 * v1 * N / (N - 1)),
            assert_close("bn2 running mean", out["bn2_running_mean"], 0.1 * a2.mean(0)))
    for k, v in (("h", dh), ("W1", dW1), ("W2", dW2), ("bn1_gamma", dg1), ("bn1_beta", db1)):
        e = max(e, assert_close("projector d" + k, grads[k], v))
    return e


def projector_infonce_fn(x):
    z, _ = projector_forward(x)
    z1, z2 = z[0::2], z[1::2]  # rows [s1v1, s1v2, s2v1, ...] viewed as [B,2,H]
    S = cos_matrix(z1, z2) / x["tau"].item()
    return {"loss": F.cross_entropy(S, torch.arange(S.shape[0])), "z": z, "logits": S}


def diffcse_labels(orig, gen, mask, cls_id):
    """method.md 4.2 steps 3-5: g[:,0] = CLS; labels = (g != orig) * mask;
    discriminator ids = g * mask (pads become id 0)."""
    g = gen.clone()
    g[:, 0] = cls_id
    labels = ((g != orig).long() * mask)
    return g, labels, g * mask


def make_diffcse_ids(r, rows, L, lengths, lo, hi, cls_id, sep_id, pad_id):
    orig = torch.full((rows, L), pad_id, dtype=torch.int64)
    mask = torch.zeros((rows, L), dtype=torch.int64)
    for b, n in enumerate(lengths):
        orig[b, :n] = torch.cat([torch.tensor([cls_id]), r.ints(lo, hi, n - 2), torch.tensor([sep_id])])
        mask[b, :n] = 1
    # Generator argmax: mostly the original token, sometimes another id
    # (also at unmasked and pad positions), and position 0 anything.
    u = r.uniform(rows, L)
    gen = torch.where(u < 0.3, r.ints(0, hi, rows, L), orig)
    gen[:, 0] = r.ints(0, hi, rows)
    return orig, gen, mask


def rtd_fn(include_pads):
    def fn(x):
        logits, labels, mask = x["logits"], x["labels"], x["attention_mask"]
        ce = F.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1), reduction="none").reshape(labels.shape)
        if include_pads:
            loss = ce.mean()
        else:
            m = mask.to(ce.dtype)
            loss = (ce * m).sum() / m.sum()
        return {"loss": loss, "per_position_ce": ce}
    return fn


def rtd_check(include_pads):
    def check(x, out, grads):
        lg = x["logits"].numpy()
        lab = x["labels"].numpy()
        m = x["attention_mask"].numpy().astype(np.float64)
        ce = scipy.special.logsumexp(lg, axis=-1) - np.take_along_axis(lg, lab[..., None], -1)[..., 0]
        ref = ce.mean() if include_pads else (ce * m).sum() / m.sum()
        sm = scipy.special.softmax(lg, axis=-1)
        onehot = np.eye(2)[lab]
        w = np.ones_like(m) / m.size if include_pads else m / m.sum()
        return max(assert_close("rtd loss", out["loss"], ref),
                   assert_close("rtd dlogits", grads["logits"], (sm - onehot) * w[..., None]))
    return check


def mlm_fn(x):
    logits, labels = x["logits"], x["labels"]
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    return {"loss": loss}


def mlm_check(x, out, grads):
    lg = x["logits"].numpy().reshape(-1, x["logits"].shape[-1])
    lab = x["labels"].numpy().reshape(-1)
    keep = lab != -100
    lsm = scipy.special.log_softmax(lg, axis=-1)
    ref = -np.mean(lsm[keep, lab[keep]])
    d = scipy.special.softmax(lg, axis=-1)
    d[np.arange(len(lab))[keep], lab[keep]] -= 1.0
    d[~keep] = 0.0
    d /= keep.sum()
    return max(assert_close("mlm loss", out["loss"], ref),
               assert_close("mlm dlogits", grads["logits"], d.reshape(x["logits"].shape)))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
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
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    w = Writer(args.out)
    B, H = 8, 16
    TAU = 0.05

    # --- InfoNCE, unsupervised (asymmetric) and symmetric.
    r = Rand(11)
    z1, z2 = infonce_inputs(r, B, H, 2.0)
    nce_meta = {"definition": "S[i,j] = cos(z1_i, z2_j)/tau (cos denominator floored at 1e-8); "
                              "loss = (1/B) sum_i [-S[i,i] + log sum_j exp S[i,j]]",
                "tau": "0.05"}
    w.case("infonce", {"z1": z1, "z2": z2, "tau": scalar(TAU)}, infonce_fn(False), ["z1", "z2"],
           nce_meta, infonce_check(False))
    w.case("infonce_symmetric", {"z1": z1, "z2": z2, "tau": scalar(TAU)}, infonce_fn(True), ["z1", "z2"],
           {"definition": "0.5 * (CE(S, diag) + CE(S^T, diag)), S as in infonce", "tau": "0.05"},
           infonce_check(True))

    # --- Supervised SimCSE with hard negatives.
    r = Rand(12)
    z1, z2 = infonce_inputs(r, B, H, 0.8)
    z3 = (z1.double() + 1.2 * r.normal(B, H).double()).float()
    w.case("infonce_supervised", {"z1": z1, "z2": z2, "z3": z3, "tau": scalar(TAU),
                                  "hard_negative_weight": scalar(0.5)},
           sup_fn, ["z1", "z2", "z3"],
           {"definition": "logits [B,2B] = [cos(z1,z2) | cos(z1,z3)]/tau; hard_negative_weight w added "
                          "to logits[i, B+i] (after /tau); loss = CE with target i", "tau": "0.05",
            "hard_negative_weight": "0.5"}, sup_check)

    # --- Teachers: two teacher embedding sets of different widths.
    r = Rand(13)
    anchor = r.normal(B, 12).double()
    t1 = torch.cat([anchor, r.normal(B, 12).double()], 1).add(0.3 * r.normal(B, 24).double()).float()
    t2 = torch.cat([anchor, r.normal(B, 20).double()], 1).add(0.5 * r.normal(B, 32).double()).float()
    s1 = (torch.cat([anchor, torch.zeros(B, 4, dtype=torch.float64)], 1) + 0.7 * r.normal(B, H).double()).float()
    s2 = (s1.double() + 0.6 * r.normal(B, H).double()).float()
    alpha, tau2 = 0.33, 0.05
    T = teacher_scores(t1.double(), t2.double(), alpha, tau2).float()

    w.case("listnet", {"z1": s1, "z2": s2, "teacher1": t1, "teacher2": t2, "alpha": scalar(alpha),
                       "tau2": scalar(tau2), "tau3": scalar(0.05), "teacher_scores": T},
           listnet_fn, ["z1", "z2"],
           {"definition": "teacher_scores = alpha*cos(teacher1)/tau2 + (1-alpha)*cos(teacher2)/tau2 (given, "
                          "float32); S = cos(z1_i,z2_j)/tau3; q_i = softmax_{j!=i} teacher_scores[i,:], "
                          "p_i = softmax_{j!=i} S[i,:]; loss = sum_i sum_{j!=i} -q_ij log p_ij / sum(q) (= B). "
                          "Outputs p, q hold 0 on the diagonal. No gamma.",
            "tau3": "0.05"}, listnet_check)

    T1 = teacher_scores(t1.double(), None, 1.0, tau2).float()
    w.case("listnet_single_teacher", {"z1": s1, "z2": s2, "teacher1": t1, "alpha": scalar(1.0),
                                      "tau2": scalar(tau2), "tau3": scalar(0.025), "teacher_scores": T1},
           listnet_fn, ["z1", "z2"],
           {"definition": "as listnet with one teacher (teacher_scores = cos(teacher1)/tau2) and tau3 = tau2/2",
            "tau3": "0.025"}, listnet_check)

    perm = listmle_permutation(T)
    mle_def = ("S = cos(z1_i,z2_j)/tau3; l_ik = S[i, permutation[i,k]]; loss = (1/B) sum_i sum_k "
               "[log sum_{m>=k} exp(l_im) - l_ik]. permutation[i] = diagonal i first, then the other "
               "columns by descending teacher_scores[i,:] (float32 values), ties by ascending column index.")
    w.case("listmle", {"z1": s1, "z2": s2, "teacher_scores": T, "permutation": perm, "tau3": scalar(0.05)},
           listmle_fn(False), ["z1", "z2"], {"definition": mle_def, "tau3": "0.05"}, listmle_check)
    w.case("listmle_community", {"z1": s1, "z2": s2, "teacher_scores": T, "permutation": perm,
                                 "tau3": scalar(0.05)},
           listmle_fn(True), ["z1", "z2"],
           {"definition": "community (allRank) form: per row l' = l - max_k l (gradient flows through the "
                          "max), loss = (1/B) sum_i sum_k [log(sum_{m>=k} exp l'_im + 1e-7) - l'_ik]; same "
                          "permutation convention as listmle", "tau3": "0.05"}, listmle_community_check)

    # Ties: sentences 2 and 5 are duplicates, and 0 and 7; a duplicated sentence
    # has the same teacher embedding, so its scores tie exactly.
    r = Rand(14)
    tt = r.normal(B, 24).double()
    tt[5], tt[7] = tt[2], tt[0]
    Tt = teacher_scores(tt, None, 1.0, tau2)
    for a, b in ((2, 5), (0, 7)):  # make the ties exact despite matmul rounding
        Tt[:, b] = Tt[:, a]
        Tt[b, :] = Tt[a, :]
    Tt = Tt.float()
    zt1 = (tt[:, :H] + 0.7 * r.normal(B, H).double()).float()
    zt2 = (zt1.double() + 0.6 * r.normal(B, H).double()).float()
    perm_t = listmle_permutation(Tt)
    assert (perm_t[5][:2] == torch.tensor([5, 2])).all() and (perm_t[2][:2] == torch.tensor([2, 5])).all()
    w.case("listmle_ties", {"z1": zt1, "z2": zt2, "teacher_scores": Tt, "permutation": perm_t,
                            "tau3": scalar(0.05)},
           listmle_fn(False), ["z1", "z2"],
           {"definition": mle_def, "tau3": "0.05",
            "ties": "rows 2,5 and 0,7 of the teacher are duplicates: teacher_scores[i,2]==teacher_scores[i,5] "
                    "and [i,0]==[i,7] exactly; e.g. row 5 starts 5,2 and row 2 starts 2,5"}, listmle_check)

    # --- Ranking consistency between the two views (inputs spread enough that
    # P and Q are not one-hot at tau1 = 0.05).
    r = Rand(19)
    c1, c2 = infonce_inputs(r, B, H, 2.5)
    w.case("consistency_jsd", {"z1": c1, "z2": c2, "tau1": scalar(0.05)}, consistency_fn(False), ["z1", "z2"],
           {"definition": "S = cos(z1_i,z2_j); P_i = softmax_j(S[i,:]/tau1), Q_i = softmax_j(S[:,i]/tau1) "
                          "(rows of S^T); loss = (1/B) sum_i JSD(P_i||Q_i), JSD = 0.5 KL(P||M) + 0.5 KL(Q||M), "
                          "M = (P+Q)/2, natural log", "tau1": "0.05"}, consistency_check(False))
    w.case("consistency_community", {"z1": c1, "z2": c2, "tau1": scalar(0.05)}, consistency_fn(True),
           ["z1", "z2"],
           {"definition": "community code as executed: 0.5/B * sum_ij (P log P + Q log Q) - 1e-7 (log M "
                          "clamped from below at 1e-7), P, Q as in consistency_jsd", "tau1": "0.05"},
           consistency_check(True))

    # --- DiffCSE BN projector: h [2B,H] -> Linear(H,2H) -> BN(affine) -> ReLU -> Linear(2H,H) -> BN(no affine).
    r = Rand(15)
    N, H2 = 2 * B, 2 * H
    proj = {"h": r.normal(N, H), "W1": r.normal(H2, H, std=0.3), "bn1_gamma": r.normal(H2, std=0.2, mean=1.0),
            "bn1_beta": r.normal(H2, std=0.2), "W2": r.normal(H, H2, std=0.3)}
    proj_meta = {"definition": "z = BN2(W2 relu(BN1(W1 h))), BN in training mode over all 2B rows: "
                               "biased batch variance, eps 1e-5; BN1 affine (bn1_gamma, bn1_beta), BN2 "
                               "affine=False; no linear biases. Running stats after one step from mean 0 "
                               "var 1, momentum 0.1, unbiased variance.",
                 "bn_eps": "1e-5"}
    w.case("bn_projector", dict(proj, R=r.normal(N, H)), projector_fn, ["h", "W1", "bn1_gamma", "bn1_beta", "W2"],
           dict(proj_meta, loss="sum(z * R)"), projector_check)
    w.case("bn_projector_infonce", dict(proj, tau=scalar(TAU)), projector_infonce_fn,
           ["h", "W1", "bn1_gamma", "bn1_beta", "W2"],
           dict(proj_meta, loss="InfoNCE(z[0::2], z[1::2], tau): h rows are [s1 view1, s1 view2, s2 view1, ...] "
                                "(the duplicated batch viewed as [B,2,H])", tau="0.05"))

    # --- DiffCSE labels and RTD cross-entropy.
    rows, L = 6, 8
    lengths = [8, 5, 3, 6, 8, 2]
    r = Rand(16)
    orig, gen, mask = make_diffcse_ids(r, rows, L, lengths, 104, 512, 101, 102, 0)
    g_fixed, labels, disc = diffcse_labels(orig, gen, mask, 101)
    lab_def = ("generator_fixed = generator_ids with column 0 set to cls_id; labels = (generator_fixed != "
               "original_ids) * attention_mask; discriminator_ids = generator_fixed * attention_mask")
    tensors = {"original_ids": orig, "generator_ids": gen, "attention_mask": mask,
               "cls_id": torch.tensor(101), "generator_fixed": g_fixed, "labels": labels,
               "discriminator_ids": disc}
    st_io.save(os.path.join(args.out, "diffcse_labels.safetensors"), tensors,
               {"generator": "tests/reference/loss_reference.py", "case": "diffcse_labels", "definition": lab_def,
                "vocab": "BERT ids: [CLS]=101 [SEP]=102 [PAD]=0"})
    log("  diffcse_labels.safetensors  %d replaced of %d real positions" % (labels.sum().item(), mask.sum().item()))
    r2 = Rand(17)
    orig_r, gen_r, mask_r = make_diffcse_ids(r2, rows, L, lengths, 4, 299, 0, 2, 1)
    g_r, labels_r, disc_r = diffcse_labels(orig_r, gen_r, mask_r, 0)
    st_io.save(os.path.join(args.out, "diffcse_labels_roberta.safetensors"),
               {"original_ids": orig_r, "generator_ids": gen_r, "attention_mask": mask_r,
                "cls_id": torch.tensor(0), "generator_fixed": g_r, "labels": labels_r, "discriminator_ids": disc_r},
               {"generator": "tests/reference/loss_reference.py", "case": "diffcse_labels_roberta",
                "definition": lab_def,
                "vocab": "RoBERTa ids: <s>=0 </s>=2 <pad>=1; discriminator_ids put 0 (<s>) at pads, as the code does"})
    log("  diffcse_labels_roberta.safetensors  %d replaced" % labels_r.sum().item())

    rtd_in = {"logits": r.normal(rows, L, 2, std=2.0), "labels": labels, "attention_mask": mask}
    w.case("rtd_ce_all_positions", rtd_in, rtd_fn(True), ["logits"],
           {"definition": "per-position 2-class softmax CE against labels; loss = mean over all rows*L "
                          "positions, pads included (label 0) -- the DiffCSE code"}, rtd_check(True))
    w.case("rtd_ce_real_positions", rtd_in, rtd_fn(False), ["logits"],
           {"definition": "per-position 2-class softmax CE; loss = sum(mask*ce)/sum(mask), pads excluded"},
           rtd_check(False))

    # --- MLM cross-entropy with ignore_index -100.
    r = Rand(18)
    Nm, Lm, Vm = 3, 6, 20
    mlm_labels = torch.full((Nm, Lm), -100, dtype=torch.int64)
    pick = r.uniform(Nm, Lm) < 0.35
    pick[2, :] = False  # one row with every position ignored
    pick[0, 1] = True
    mlm_labels[pick] = r.ints(0, Vm, int(pick.sum().item()))
    mlm_def = {"definition": "CE over the last axis for positions with labels != -100, mean over those "
                             "positions (torch.nn.CrossEntropyLoss(ignore_index=-100), reduction mean)",
               "ignore_index": "-100"}
    w.case("mlm_ce", {"logits": r.normal(Nm, Lm, Vm, std=2.0), "labels": mlm_labels}, mlm_fn, ["logits"],
           mlm_def, mlm_check)
    big = r.normal(Nm, Lm, Vm, std=40.0)  # |logits| ~ 100: exp overflows float32 without max-subtraction
    w.case("mlm_ce_large_logits", {"logits": big, "labels": mlm_labels}, mlm_fn, ["logits"],
           dict(mlm_def, note="logits up to ~150 in magnitude; a stable log-sum-exp is required"), mlm_check)
    log("done: %s (%d loss cases)" % (args.out, len(w.summary)))


if __name__ == "__main__":
    main()
