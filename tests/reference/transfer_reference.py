#!/usr/bin/python3
"""transfer_reference.py: SentEval's transfer-task classifier, re-done in numpy.

Reproduces senteval/tools/classifier.py (PyTorchClassifier + MLP with
nhid = 0) and senteval/tools/validation.py (InnerKFoldClassifier,
KFoldClassifier, SplitClassifier) as SimCSE runs them (usepytorch = True), on
fixed low-dimensional features, and writes what the C implementation
(core/eval/transfer-classifier.c) must reproduce:

    tests/fixtures/transfer/golden.json

What is SentEval's here, line by line: numpy's RandomState(seed) reseeded per
classifier, np.random.permutation per epoch and for the 5% validation split,
StratifiedKFold(shuffle=True) (scikit-learn >= 0.22 algorithm, re-implemented
below because scikit-learn is not installed), the L2 grid 1e-5..1e-2, mean
CrossEntropyLoss, torch's Adam / RMSprop update with weight_decay = L2,
early stopping with the never-reset counter, and SentEval's rounding (Python
round on floats, numpy round on numpy means). What is not: torch draws the
initial weights from its own generator in float32; here they come from a
second RandomState(seed) (uniform(-1/sqrt(d), 1/sqrt(d)), weights then bias,
nn.Linear's distribution) and everything runs in float64. The C code makes
the same two choices, so the numbers agree to the last decimal except where
summation order flips a prediction.

Usage:
    /usr/bin/python3 tests/reference/transfer_reference.py            # (re)write the golden
    /usr/bin/python3 tests/reference/transfer_reference.py --check DIR # recompute, compare with DIR/golden.json
"""
import json
import math
import os
import sys
import tempfile

import numpy as np

L2_GRID = [10 ** t for t in range(-5, -1)]
MODES = {
    "test": dict(optim="adam", batch_size=64, tenacity=5, epoch_size=4, kfold=10),
    "fasttest": dict(optim="rmsprop", batch_size=128, tenacity=3, epoch_size=2, kfold=5),
}


class LogReg:
    """PyTorchClassifier with MLP(nhid=0), in float64."""

    def __init__(self, cfg, inputdim, nclasses, l2reg, seed=1111):
        np.random.seed(seed)
        init = np.random.RandomState(seed)
        bound = 1.0 / math.sqrt(inputdim)
        self.W = init.uniform(-bound, bound, (nclasses, inputdim))
        self.b = init.uniform(-bound, bound, nclasses)
        self.cfg, self.l2reg = cfg, l2reg
        self.max_epoch = 200
        self.state = [np.zeros_like(self.W), np.zeros_like(self.b), np.zeros_like(self.W), np.zeros_like(self.b)]
        self.t = 0

    def prepare_split(self, X, y, validation_data=None, validation_split=None):
        if validation_data is not None:
            return X, y, validation_data[0], validation_data[1]
        permutation = np.random.permutation(len(X))
        trainidx = permutation[int(validation_split * len(X)):]
        devidx = permutation[0:int(validation_split * len(X))]
        return X[trainidx], y[trainidx], X[devidx], y[devidx]

    def fit(self, X, y, validation_data=None, validation_split=None, early_stop=True):
        self.nepoch = 0
        bestaccuracy = -1
        stop_train = False
        early_stop_count = 0
        trainX, trainy, devX, devy = self.prepare_split(X, y, validation_data, validation_split)
        best = (self.W.copy(), self.b.copy())
        while not stop_train and self.nepoch <= self.max_epoch:
            self.trainepoch(trainX, trainy, epoch_size=self.cfg["epoch_size"])
            accuracy = self.score(devX, devy)
            if accuracy > bestaccuracy:
                bestaccuracy = accuracy
                best = (self.W.copy(), self.b.copy())
            elif early_stop:
                if early_stop_count >= self.cfg["tenacity"]:
                    stop_train = True
                early_stop_count += 1
        self.W, self.b = best
        return bestaccuracy

    def trainepoch(self, X, y, epoch_size=1):
        bs = self.cfg["batch_size"]
        for _ in range(self.nepoch, self.nepoch + epoch_size):
            permutation = np.random.permutation(len(X))
            for i in range(0, len(X), bs):
                idx = permutation[i:i + bs]
                self.step(X[idx], y[idx])
        self.nepoch += epoch_size

    def step(self, Xb, yb):
        z = Xb @ self.W.T + self.b
        z = np.exp(z - z.max(axis=1, keepdims=True))
        p = z / z.sum(axis=1, keepdims=True)
        p[np.arange(len(yb)), yb] -= 1.0
        p /= len(yb)
        gW, gb = p.T @ Xb, p.sum(axis=0)
        self.t += 1
        params = [self.W, self.b]
        for k, g in enumerate([gW, gb]):
            g = g + self.l2reg * params[k]
            if self.cfg["optim"] == "adam":
                m, v = self.state[k], self.state[2 + k]
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                bc1, bc2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
                params[k] -= (1e-3 / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + 1e-8)
            else:
                v = self.state[2 + k]
                v *= 0.99
                v += 0.01 * g * g
                params[k] -= 1e-2 * g / (np.sqrt(v) + 1e-8)

    def predict(self, X):
        return np.argmax(X @ self.W.T + self.b, axis=1)

    def score(self, X, y):
        return 1.0 * int((self.predict(X) == y).sum()) / len(X)


def stratified_folds(y, n_splits, random_state):
    """StratifiedKFold(n_splits, shuffle=True, random_state)._make_test_folds."""
    rng = np.random.RandomState(random_state)
    _, y_idx, y_inv = np.unique(y, return_index=True, return_inverse=True)
    _, class_perm = np.unique(y_idx, return_inverse=True)
    y_encoded = class_perm[y_inv]
    n_classes = len(y_idx)
    y_order = np.sort(y_encoded)
    allocation = np.asarray([np.bincount(y_order[i::n_splits], minlength=n_classes) for i in range(n_splits)])
    test_folds = np.empty(len(y), dtype="i")
    for k in range(n_classes):
        folds_for_class = np.arange(n_splits).repeat(allocation[:, k])
        rng.shuffle(folds_for_class)
        test_folds[y_encoded == k] = folds_for_class
    return test_folds


def skf_split(y, n_splits, random_state):
    folds = stratified_folds(y, n_splits, random_state)
    idx = np.arange(len(y))
    for i in range(n_splits):
        yield idx[folds != i], idx[folds == i]


def inner_kfold(X, y, nclasses, cfg):
    k = cfg["kfold"]
    devresults, testresults = [], []
    for train_idx, test_idx in skf_split(y, k, 1111):
        X_train, X_test = X[train_idx], X[test_idx]
        y_train, y_test = y[train_idx], y[test_idx]
        scores = []
        for reg in L2_GRID:
            regscores = []
            for inner_train_idx, inner_test_idx in skf_split(y_train, k, 1111):
                clf = LogReg(cfg, X.shape[1], nclasses, reg)
                clf.fit(X_train[inner_train_idx], y_train[inner_train_idx],
                        validation_data=(X_train[inner_test_idx], y_train[inner_test_idx]))
                regscores.append(clf.score(X_train[inner_test_idx], y_train[inner_test_idx]))
            scores.append(round(100 * np.mean(regscores), 2))
        optreg = L2_GRID[np.argmax(scores)]
        devresults.append(np.max(scores))
        clf = LogReg(cfg, X.shape[1], nclasses, optreg)
        clf.fit(X_train, y_train, validation_split=0.05)
        testresults.append(round(100 * clf.score(X_test, y_test), 2))
    return dict(devacc=float(round(np.mean(devresults), 2)), acc=float(round(np.mean(testresults), 2)), reg=optreg)


def f1_binary(y, yhat):
    tp = int(((y == 1) & (yhat == 1)).sum())
    fp = int(((y != 1) & (yhat == 1)).sum())
    fn = int(((y == 1) & (yhat != 1)).sum())
    return np.float64(2.0 * tp / (2 * tp + fp + fn)) if tp + fp + fn else np.float64(0.0)


def kfold(Xtr, ytr, Xte, yte, nclasses, cfg, seed=1111):
    scores = []
    for reg in L2_GRID:
        scanscores = []
        for train_idx, test_idx in skf_split(ytr, cfg["kfold"], seed):
            clf = LogReg(cfg, Xtr.shape[1], nclasses, reg)
            clf.fit(Xtr[train_idx], ytr[train_idx], validation_data=(Xtr[test_idx], ytr[test_idx]))
            scanscores.append(clf.score(Xtr[test_idx], ytr[test_idx]))
        scores.append(round(100 * np.mean(scanscores), 2))
    optreg = L2_GRID[np.argmax(scores)]
    clf = LogReg(cfg, Xtr.shape[1], nclasses, optreg)
    clf.fit(Xtr, ytr, validation_split=0.05)
    yhat = clf.predict(Xte)
    out = dict(devacc=float(np.max(scores)), acc=round(100 * clf.score(Xte, yte), 2), reg=optreg)
    if nclasses == 2:
        out["f1"] = float(round(100 * f1_binary(yte, yhat), 2))
    return out


def split(Xtr, ytr, Xdv, ydv, Xte, yte, nclasses, cfg):
    scores = []
    for reg in L2_GRID:
        clf = LogReg(cfg, Xtr.shape[1], nclasses, reg)
        clf.fit(Xtr, ytr, validation_data=(Xdv, ydv))
        scores.append(round(100 * clf.score(Xdv, ydv), 2))
    optreg = L2_GRID[np.argmax(scores)]
    clf = LogReg(cfg, Xtr.shape[1], nclasses, optreg)
    clf.fit(Xtr, ytr, validation_data=(Xdv, ydv))
    return dict(devacc=float(np.max(scores)), acc=round(100 * clf.score(Xte, yte), 2), reg=optreg)


def blobs(rs, n, d, nclasses, spread):
    """Overlapping Gaussian classes, float32 values (as SentEval's features)."""
    y = rs.randint(0, nclasses, n)
    centers = rs.normal(0, 1, (nclasses, d))
    X = (6.0 * (centers[y] + spread * rs.normal(0, 1, (n, d)))).astype(np.float32)
    return X, y.astype(np.int64)


def fixture():
    rs = np.random.RandomState(20260521)
    tasks = []
    X, y = blobs(rs, 400, 16, 2, 2.2)
    tasks.append(dict(name="inner", scheme="inner_kfold", n_classes=2, splits=[("all", X, y)]))
    X, y = blobs(rs, 260, 12, 3, 1.8)
    tasks.append(dict(name="kfold3", scheme="kfold", n_classes=3, splits=[("train", X[:200], y[:200]),
                                                                          ("test", X[200:], y[200:])]))
    X, y = blobs(rs, 240, 10, 2, 2.0)
    tasks.append(dict(name="kfold2", scheme="kfold", n_classes=2, splits=[("train", X[:180], y[:180]),
                                                                          ("test", X[180:], y[180:])]))
    X, y = blobs(rs, 420, 12, 2, 2.0)
    tasks.append(dict(name="split", scheme="split", n_classes=2,
                      splits=[("train", X[:300], y[:300]), ("dev", X[300:360], y[300:360]),
                              ("test", X[360:], y[360:])]))
    return tasks


def run(task, cfg):
    s = [(X.astype(np.float64), y) for _, X, y in task["splits"]]
    if task["scheme"] == "inner_kfold":
        return inner_kfold(s[0][0], s[0][1], task["n_classes"], cfg)
    if task["scheme"] == "kfold":
        return kfold(s[0][0], s[0][1], s[1][0], s[1][1], task["n_classes"], cfg)
    return split(s[0][0], s[0][1], s[1][0], s[1][1], s[2][0], s[2][1], task["n_classes"], cfg)


def golden():
    tasks = fixture()
    out = {"generator": "tests/reference/transfer_reference.py", "tasks": [], "results": {},
           "numpy": {"permutation_10_seed_1111": np.random.RandomState(1111).permutation(10).tolist(),
                     "permutation_1000_seed_7_head": np.random.RandomState(7).permutation(1000)[:20].tolist(),
                     "random_sample_seed_1111": [float(v) for v in np.random.RandomState(1111).random_sample(3)],
                     "folds_inner_k10": stratified_folds(tasks[0]["splits"][0][2], 10, 1111).tolist(),
                     "folds_kfold3_k5": stratified_folds(tasks[1]["splits"][0][2], 5, 1111).tolist()}}
    for t in tasks:
        out["tasks"].append(dict(name=t["name"], scheme=t["scheme"], n_classes=t["n_classes"],
                                 splits=[dict(name=n, y=y.tolist(), x=[[float("%.9g" % v) for v in row] for row in X])
                                         for n, X, y in t["splits"]]))
    for mode, cfg in MODES.items():
        out["results"][mode] = {t["name"]: run(t, cfg) for t in tasks}
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "fixtures", "transfer")
    data = golden()
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if len(sys.argv) >= 2 and sys.argv[1] == "--check":
        folder = sys.argv[2] if len(sys.argv) > 2 else default
        with open(os.path.join(folder, "golden.json")) as f:
            committed = f.read()
        if committed != text:
            print("transfer_reference.py: recomputed golden differs from %s/golden.json" % folder)
            return 1
        print("transfer_reference.py: golden.json reproduced")
        return 0
    path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else default, "golden.json")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".golden.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    for mode, res in data["results"].items():
        for name, r in res.items():
            print(mode, name, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
