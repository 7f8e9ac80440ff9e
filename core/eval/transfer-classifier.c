/* transfer-classifier.c: SentEval's classifier and validation schemes
 * (senteval/tools/classifier.py, senteval/tools/validation.py) with nhid = 0,
 * in double precision.
 *
 * Per classifier, as SentEval's PyTorchClassifier: the numpy stream is
 * reseeded with the seed, an optional 5% validation split is drawn from it,
 * then one permutation per epoch; batches of the permuted rows take one
 * optimizer step on the mean cross-entropy (torch's CrossEntropyLoss: its
 * size_average = False assignment after construction has no effect), with
 * weight decay = the L2 penalty added to the gradient of weights and bias.
 * After every epoch_size epochs the validation accuracy is measured; the best
 * model is kept; training stops when the count of non-improving evaluations,
 * which is never reset, exceeds the tenacity, or after max_epoch epochs. */
#include <math.h>
#include <string.h>

#include "stsim/stsim-transfer.h"

/* ---- numpy's RandomState -------------------------------------------------- */

void
stsim_mt19937_init (StsimMt19937 *mt, guint32 seed)
{
  mt->key[0] = seed;
  for (int i = 1; i < 624; i++)
    mt->key[i] = 1812433253u * (mt->key[i - 1] ^ (mt->key[i - 1] >> 30)) + (guint32) i;
  mt->pos = 624;
}

static void
mt_generate (StsimMt19937 *mt)
{
  static const guint32 mag01[2] = { 0x0u, 0x9908b0dfu };
  int i;
  guint32 y;
  for (i = 0; i < 624 - 397; i++) {
    y = (mt->key[i] & 0x80000000u) | (mt->key[i + 1] & 0x7fffffffu);
    mt->key[i] = mt->key[i + 397] ^ (y >> 1) ^ mag01[y & 1];
  }
  for (; i < 623; i++) {
    y = (mt->key[i] & 0x80000000u) | (mt->key[i + 1] & 0x7fffffffu);
    mt->key[i] = mt->key[i + 397 - 624] ^ (y >> 1) ^ mag01[y & 1];
  }
  y = (mt->key[623] & 0x80000000u) | (mt->key[0] & 0x7fffffffu);
  mt->key[623] = mt->key[396] ^ (y >> 1) ^ mag01[y & 1];
  mt->pos = 0;
}

guint32
stsim_mt19937_u32 (StsimMt19937 *mt)
{
  if (mt->pos >= 624)
    mt_generate (mt);
  guint32 y = mt->key[mt->pos++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

double
stsim_mt19937_double (StsimMt19937 *mt)
{
  guint32 a = stsim_mt19937_u32 (mt) >> 5, b = stsim_mt19937_u32 (mt) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* numpy's legacy random_interval: masked rejection sampling in [0, max]. */
static guint32
mt_interval (StsimMt19937 *mt, guint32 max)
{
  if (max == 0)
    return 0;
  guint32 mask = max, v;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  while ((v = stsim_mt19937_u32 (mt) & mask) > max)
    ;
  return v;
}

void
stsim_mt19937_shuffle (StsimMt19937 *mt, gint32 *x, gsize n)
{
  for (gsize i = n; i-- > 1;) {
    gsize j = mt_interval (mt, (guint32) i);
    gint32 t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
}

void
stsim_mt19937_permutation (StsimMt19937 *mt, gint32 *out, gsize n)
{
  for (gsize i = 0; i < n; i++)
    out[i] = (gint32) i;
  stsim_mt19937_shuffle (mt, out, n);
}

/* ---- configuration and rounding ------------------------------------------- */

void
stsim_transfer_config_init (StsimTransferConfig *c, gboolean fasttest)
{
  memset (c, 0, sizeof *c);
  c->optim = fasttest ? STSIM_TRANSFER_RMSPROP : STSIM_TRANSFER_ADAM;
  c->batch_size = fasttest ? 128 : 64;
  c->tenacity = fasttest ? 3 : 5;
  c->epoch_size = fasttest ? 2 : 4;
  c->max_epoch = 200;
  c->kfold = fasttest ? 5 : 10;
  c->seed = 1111;
}

/* Python's round(x, 2) of a float: correctly rounded, ties to even, which is
 * what glibc's printf does. */
static double
py_round2 (double x)
{
  char buf[64];
  g_snprintf (buf, sizeof buf, "%.2f", x);
  return g_ascii_strtod (buf, NULL);
}

/* round(x, 2) of a numpy float64 is np.around: rint(x * 100) / 100. */
static double
np_round2 (double x)
{
  return rint (x * 100.0) / 100.0;
}

/* np.mean of a short array: numpy's pairwise summation (8 partial sums from
 * 8 values on), divided by n. Plain left-to-right sums differ in the last
 * bit, which can move a .xx5 tie of the rounding above. */
static double
np_mean (const double *a, gsize n)
{
  double res;
  gsize i;
  if (n < 8) {
    res = -0.0;
    for (i = 0; i < n; i++)
      res += a[i];
  } else {
    double r[8];
    for (i = 0; i < 8; i++)
      r[i] = a[i];
    for (i = 8; i < n - n % 8; i += 8)
      for (gsize j = 0; j < 8; j++)
        r[j] += a[i + j];
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++)
      res += a[i];
  }
  return res / (double) n;
}

static const double L2_GRID[] = { 1e-5, 1e-4, 1e-3, 1e-2 };  /* [10**t for t in range(-5, -1)] */
#define N_L2 G_N_ELEMENTS (L2_GRID)

/* ---- one logistic regression ------------------------------------------------ */

typedef struct {
  const StsimTransferMatrix *x;
  const StsimTransferConfig *cfg;
  gsize   d, c, np;       /* features, classes, parameters = c * (d + 1) */
  double *w;              /* [c * d] then bias [c] */
  double *best;           /* the kept model */
  double *g, *m, *v;      /* gradient, optimizer state */
  double *logits;         /* [batch * c] */
  guint64 t;              /* optimizer steps */
  double  l2;
} Clf;

static void
clf_init (Clf *k, const StsimTransferMatrix *x, guint n_classes, const StsimTransferConfig *cfg, double l2)
{
  memset (k, 0, sizeof *k);
  k->x = x;
  k->cfg = cfg;
  k->d = x->d;
  k->c = n_classes;
  k->np = k->c * (k->d + 1);
  k->w = g_new (double, k->np);
  k->best = g_new (double, k->np);
  k->g = g_new0 (double, k->np);
  k->m = g_new0 (double, k->np);
  k->v = g_new0 (double, k->np);
  k->logits = g_new (double, (gsize) MAX (cfg->batch_size, 1) * k->c);
  k->l2 = l2;
  /* nn.Linear's default initialisation, U(-1/sqrt(d), 1/sqrt(d)) for weight
   * then bias, drawn from an MT19937 stream of the seed (torch's generator
   * in SentEval). */
  StsimMt19937 init;
  stsim_mt19937_init (&init, cfg->seed);
  double bound = 1.0 / sqrt ((double) k->d);
  for (gsize i = 0; i < k->np; i++)
    k->w[i] = -bound + 2.0 * bound * stsim_mt19937_double (&init);
}

static void
clf_clear (Clf *k)
{
  g_free (k->w);
  g_free (k->best);
  g_free (k->g);
  g_free (k->m);
  g_free (k->v);
  g_free (k->logits);
}

/* logits[cls] = w[cls] . x[row] + b[cls] */
static void
clf_forward (const Clf *k, const StsimTransferMatrix *x, const double *w, gsize row, double *out)
{
  const double *b = w + k->c * k->d;
  for (gsize c = 0; c < k->c; c++) {
    const double *wc = w + c * k->d;
    double s = 0;
    if (x->dense) {
      const float *xr = x->dense + row * x->d;
      for (gsize j = 0; j < k->d; j++)
        s += wc[j] * (double) xr[j];
    } else
      for (gsize p = x->rowptr[row]; p < x->rowptr[row + 1]; p++)
        s += wc[x->col[p]] * (double) x->val[p];
    out[c] = s + b[c];
  }
}

/* g[cls] += coef[cls] * x[row] */
static void
clf_accumulate (Clf *k, gsize row, const double *coef)
{
  const StsimTransferMatrix *x = k->x;
  double *gb = k->g + k->c * k->d;
  for (gsize c = 0; c < k->c; c++) {
    double *gc = k->g + c * k->d, a = coef[c];
    if (x->dense) {
      const float *xr = x->dense + row * x->d;
      for (gsize j = 0; j < k->d; j++)
        gc[j] += a * (double) xr[j];
    } else
      for (gsize p = x->rowptr[row]; p < x->rowptr[row + 1]; p++)
        gc[x->col[p]] += a * (double) x->val[p];
    gb[c] += a;
  }
}

static void
clf_update (Clf *k)
{
  k->t++;
  double l2 = k->l2;
  if (k->cfg->optim == STSIM_TRANSFER_ADAM) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, lr = 1e-3;
    double bc1 = 1.0 - pow (b1, (double) k->t), bc2 = 1.0 - pow (b2, (double) k->t);
    double step = lr / bc1, sbc2 = sqrt (bc2);
    for (gsize i = 0; i < k->np; i++) {
      double g = k->g[i] + l2 * k->w[i];
      k->m[i] = b1 * k->m[i] + (1.0 - b1) * g;
      k->v[i] = b2 * k->v[i] + (1.0 - b2) * g * g;
      k->w[i] -= step * k->m[i] / (sqrt (k->v[i]) / sbc2 + eps);
    }
  } else {
    const double alpha = 0.99, eps = 1e-8, lr = 1e-2;
    for (gsize i = 0; i < k->np; i++) {
      double g = k->g[i] + l2 * k->w[i];
      k->v[i] = alpha * k->v[i] + (1.0 - alpha) * g * g;
      k->w[i] -= lr * g / (sqrt (k->v[i]) + eps);
    }
  }
}

/* One optimizer step on rows[0..nb) (mean softmax cross-entropy). */
static void
clf_step (Clf *k, const gint32 *rows, const gint32 *y, gsize nb)
{
  memset (k->g, 0, k->np * sizeof (double));
  for (gsize i = 0; i < nb; i++) {
    double *z = k->logits + i * k->c, mx = -INFINITY, sum = 0;
    clf_forward (k, k->x, k->w, (gsize) rows[i], z);
    for (gsize c = 0; c < k->c; c++)
      mx = MAX (mx, z[c]);
    for (gsize c = 0; c < k->c; c++)
      sum += (z[c] = exp (z[c] - mx));
    for (gsize c = 0; c < k->c; c++)
      z[c] = (z[c] / sum - (y[i] == (gint32) c ? 1.0 : 0.0)) / (double) nb;
    clf_accumulate (k, (gsize) rows[i], z);
  }
  clf_update (k);
}

/* Predictions of @w for rows; returns the number equal to y (when y given). */
static gsize
clf_predict (const Clf *k, const StsimTransferMatrix *x, const double *w, const gint32 *rows, const gint32 *y,
             gsize n, gint32 *pred)
{
  g_autofree double *z = g_new (double, k->c);
  gsize correct = 0;
  for (gsize i = 0; i < n; i++) {
    clf_forward (k, x, w, (gsize) rows[i], z);
    gsize arg = 0;
    for (gsize c = 1; c < k->c; c++)
      if (z[c] > z[arg])
        arg = c;
    if (pred)
      pred[i] = (gint32) arg;
    if (y && (gint32) arg == y[i])
      correct++;
  }
  return correct;
}

/* PyTorchClassifier.fit over rows[0..n) of k->x, validated on rows dev of
 * @devx. With dev == NULL, the first int(0.05 n) rows of a permutation
 * validate instead (validation_split). Leaves the best model in k->w. */
static void
clf_fit (Clf *k, const gint32 *rows, const gint32 *y, gsize n, const StsimTransferMatrix *devx, const gint32 *dev,
         const gint32 *ydev, gsize ndev)
{
  StsimMt19937 mt;
  stsim_mt19937_init (&mt, k->cfg->seed);
  g_autofree gint32 *tr = g_new (gint32, n), *ytr = g_new (gint32, n);
  g_autofree gint32 *dv = NULL, *ydv = NULL;
  gsize ntr = n;
  if (dev == NULL) {
    g_autofree gint32 *perm = g_new (gint32, n);
    stsim_mt19937_permutation (&mt, perm, n);
    ndev = (gsize) (0.05 * (double) n);
    ntr = n - ndev;
    dv = g_new (gint32, MAX (ndev, 1));
    ydv = g_new (gint32, MAX (ndev, 1));
    for (gsize i = 0; i < ndev; i++)
      dv[i] = rows[perm[i]], ydv[i] = y[perm[i]];
    for (gsize i = 0; i < ntr; i++)
      tr[i] = rows[perm[ndev + i]], ytr[i] = y[perm[ndev + i]];
    dev = dv;
    ydev = ydv;
    devx = k->x;
  } else {
    memcpy (tr, rows, n * sizeof (gint32));
    memcpy (ytr, y, n * sizeof (gint32));
  }
  const StsimTransferConfig *cfg = k->cfg;
  g_autofree gint32 *perm = g_new (gint32, MAX (ntr, 1));
  g_autofree gint32 *br = g_new (gint32, cfg->batch_size), *by = g_new (gint32, cfg->batch_size);
  gint64 best = -1;
  guint nepoch = 0, early = 0;
  gboolean stop = FALSE;
  memcpy (k->best, k->w, k->np * sizeof (double));
  while (!stop && nepoch <= cfg->max_epoch) {
    for (guint e = 0; e < cfg->epoch_size; e++) {
      stsim_mt19937_permutation (&mt, perm, ntr);
      for (gsize i = 0; i < ntr; i += cfg->batch_size) {
        gsize nb = MIN (cfg->batch_size, ntr - i);
        for (gsize j = 0; j < nb; j++)
          br[j] = tr[perm[i + j]], by[j] = ytr[perm[i + j]];
        clf_step (k, br, by, nb);
      }
    }
    nepoch += cfg->epoch_size;
    gint64 correct = (gint64) clf_predict (k, devx, k->w, dev, ydev, ndev, NULL);
    if (correct > best) {
      best = correct;
      memcpy (k->best, k->w, k->np * sizeof (double));
    } else {
      if (early >= cfg->tenacity)
        stop = TRUE;
      early++;
    }
  }
  memcpy (k->w, k->best, k->np * sizeof (double));
}

/* A fresh classifier with penalty @l2 fitted on (rows, y); returns the
 * accuracy of the kept model on (trows, ty) and its predictions. */
static double
fit_and_score (const StsimTransferMatrix *x, guint n_classes, const StsimTransferConfig *cfg, double l2,
               const gint32 *rows, const gint32 *y, gsize n, const gint32 *dev, const gint32 *ydev, gsize ndev,
               const StsimTransferMatrix *tx, const gint32 *trows, const gint32 *ty, gsize nt, gint32 *pred)
{
  Clf k;
  clf_init (&k, x, n_classes, cfg, l2);
  clf_fit (&k, rows, y, n, x, dev, ydev, ndev);
  double acc = (double) clf_predict (&k, tx, k.w, trows, ty, nt, pred) / (double) MAX (nt, 1);
  clf_clear (&k);
  return acc;
}

/* ---- folds ------------------------------------------------------------------- */

gboolean
stsim_transfer_stratified_folds (const gint32 *y, gsize n, guint k, guint32 seed, gint32 *fold, GError **error)
{
  /* Classes numbered in order of first appearance (sklearn's y_encoded). */
  g_autoptr (GHashTable) code = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autofree gint32 *enc = g_new (gint32, MAX (n, 1));
  g_autoptr (GArray) counts = g_array_new (FALSE, TRUE, sizeof (gsize));
  for (gsize i = 0; i < n; i++) {
    gpointer v;
    if (!g_hash_table_lookup_extended (code, GINT_TO_POINTER (y[i]), NULL, &v)) {
      v = GUINT_TO_POINTER (counts->len);
      g_hash_table_insert (code, GINT_TO_POINTER (y[i]), v);
      g_array_set_size (counts, counts->len + 1);
    }
    enc[i] = (gint32) GPOINTER_TO_UINT (v);
    g_array_index (counts, gsize, enc[i])++;
  }
  guint nc = counts->len;
  gboolean all_small = TRUE;
  for (guint c = 0; c < nc; c++)
    all_small = all_small && g_array_index (counts, gsize, c) < k;
  if (k < 2 || all_small) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "cannot make %u stratified folds of %" G_GSIZE_FORMAT
                 " labels (every class has fewer members)", k, n);
    return FALSE;
  }
  /* allocation[f][c]: members of class c among sorted labels f, f + k, ... */
  g_autofree gsize *alloc = g_new0 (gsize, (gsize) k * nc);
  gsize pos = 0;
  for (guint c = 0; c < nc; c++)
    for (gsize j = 0; j < g_array_index (counts, gsize, c); j++, pos++)
      alloc[(pos % k) * nc + c]++;
  StsimMt19937 mt;
  stsim_mt19937_init (&mt, seed);
  for (guint c = 0; c < nc; c++) {
    gsize m = g_array_index (counts, gsize, c), p = 0;
    g_autofree gint32 *ff = g_new (gint32, MAX (m, 1));
    for (guint f = 0; f < k; f++)
      for (gsize j = 0; j < alloc[f * nc + c]; j++)
        ff[p++] = (gint32) f;
    stsim_mt19937_shuffle (&mt, ff, m);
    p = 0;
    for (gsize i = 0; i < n; i++)
      if (enc[i] == (gint32) c)
        fold[i] = ff[p++];
  }
  return TRUE;
}

/* Rows (ascending) of @rows whose fold is / is not @f. */
static gsize
fold_rows (const gint32 *rows, const gint32 *y, const gint32 *fold, gsize n, gint32 f, gboolean in, gint32 *out,
           gint32 *yout)
{
  gsize m = 0;
  for (gsize i = 0; i < n; i++)
    if ((fold[i] == f) == in) {
      out[m] = rows[i];
      yout[m++] = y[i];
    }
  return m;
}

static gsize
argmax_first (const double *s, gsize n)
{
  gsize a = 0;
  for (gsize i = 1; i < n; i++)
    if (s[i] > s[a])
      a = i;
  return a;
}

/* Mean accuracy (x100, numpy-rounded) over the k folds of (rows, y), each
 * fold validating a classifier trained on the others, per L2 penalty. */
static gboolean
cv_scores (const StsimTransferMatrix *x, const gint32 *rows, const gint32 *y, gsize n, guint n_classes,
           const StsimTransferConfig *cfg, guint32 fold_seed, double *scores, guint *n_fits, GError **error)
{
  g_autofree gint32 *fold = g_new (gint32, MAX (n, 1));
  if (!stsim_transfer_stratified_folds (y, n, cfg->kfold, fold_seed, fold, error))
    return FALSE;
  g_autofree gint32 *tr = g_new (gint32, n), *ytr = g_new (gint32, n);
  g_autofree gint32 *te = g_new (gint32, n), *yte = g_new (gint32, n);
  g_autofree double *accs = g_new (double, cfg->kfold);
  for (gsize r = 0; r < N_L2; r++) {
    for (guint f = 0; f < cfg->kfold; f++) {
      gsize ntr = fold_rows (rows, y, fold, n, (gint32) f, FALSE, tr, ytr);
      gsize nte = fold_rows (rows, y, fold, n, (gint32) f, TRUE, te, yte);
      accs[f] = fit_and_score (x, n_classes, cfg, L2_GRID[r], tr, ytr, ntr, te, yte, nte, x, te, yte, nte, NULL);
      (*n_fits)++;
    }
    scores[r] = np_round2 (100.0 * np_mean (accs, cfg->kfold));
  }
  return TRUE;
}

static gint32 *
iota (gsize n)
{
  gint32 *r = g_new (gint32, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    r[i] = (gint32) i;
  return r;
}

static gboolean
check_matrix (const StsimTransferMatrix *x, const char *what, GError **error)
{
  if (x == NULL || x->n == 0 || x->d == 0 || x->d > G_MAXUINT32 || x->n > G_MAXINT32) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "transfer classifier: the %s features are empty "
                 "or too large", what);
    return FALSE;
  }
  return TRUE;
}

gboolean
stsim_transfer_inner_kfold (const StsimTransferMatrix *x, const gint32 *y, guint n_classes,
                            const StsimTransferConfig *cfg, StsimTransferScore *score, GError **error)
{
  if (!check_matrix (x, "task", error))
    return FALSE;
  gsize n = x->n;
  g_autofree gint32 *all = iota (n), *fold = g_new (gint32, n);
  if (!stsim_transfer_stratified_folds (y, n, cfg->kfold, 1111, fold, error))
    return FALSE;
  g_autofree gint32 *tr = g_new (gint32, n), *ytr = g_new (gint32, n);
  g_autofree gint32 *te = g_new (gint32, n), *yte = g_new (gint32, n);
  g_autofree double *devs = g_new (double, cfg->kfold), *tests = g_new (double, cfg->kfold);
  memset (score, 0, sizeof *score);
  score->f1 = NAN;
  for (guint f = 0; f < cfg->kfold; f++) {
    gsize ntr = fold_rows (all, y, fold, n, (gint32) f, FALSE, tr, ytr);
    gsize nte = fold_rows (all, y, fold, n, (gint32) f, TRUE, te, yte);
    double scores[N_L2];
    if (!cv_scores (x, tr, ytr, ntr, n_classes, cfg, 1111, scores, &score->n_fits, error))
      return FALSE;
    gsize best = argmax_first (scores, N_L2);
    devs[f] = scores[best];
    score->reg = L2_GRID[best];
    double acc = fit_and_score (x, n_classes, cfg, L2_GRID[best], tr, ytr, ntr, NULL, NULL, 0, x, te, yte, nte,
                                NULL);
    score->n_fits++;
    tests[f] = py_round2 (100.0 * acc);
  }
  score->devacc = np_round2 (np_mean (devs, cfg->kfold));
  score->acc = np_round2 (np_mean (tests, cfg->kfold));
  return TRUE;
}

/* sklearn's f1_score (binary, positive label 1) of predictions. */
static double
f1_binary (const gint32 *y, const gint32 *pred, gsize n)
{
  gsize tp = 0, fp = 0, fn = 0;
  for (gsize i = 0; i < n; i++) {
    tp += y[i] == 1 && pred[i] == 1;
    fp += y[i] != 1 && pred[i] == 1;
    fn += y[i] == 1 && pred[i] != 1;
  }
  return tp + fp + fn ? 2.0 * tp / (double) (2 * tp + fp + fn) : 0.0;
}

gboolean
stsim_transfer_kfold (const StsimTransferMatrix *train, const gint32 *y_train, const StsimTransferMatrix *test,
                      const gint32 *y_test, guint n_classes, const StsimTransferConfig *cfg,
                      StsimTransferScore *score, gint32 *pred_test, GError **error)
{
  if (!check_matrix (train, "train", error) || !check_matrix (test, "test", error))
    return FALSE;
  memset (score, 0, sizeof *score);
  gsize n = train->n;
  g_autofree gint32 *all = iota (n), *trows = iota (test->n);
  g_autofree gint32 *pred = g_new (gint32, test->n);
  double scores[N_L2];
  if (!cv_scores (train, all, y_train, n, n_classes, cfg, cfg->seed, scores, &score->n_fits, error))
    return FALSE;
  gsize best = argmax_first (scores, N_L2);
  score->devacc = scores[best];
  score->reg = L2_GRID[best];
  double acc = fit_and_score (train, n_classes, cfg, L2_GRID[best], all, y_train, n, NULL, NULL, 0, test, trows,
                              y_test, test->n, pred);
  score->n_fits++;
  score->acc = py_round2 (100.0 * acc);
  score->f1 = n_classes == 2 ? np_round2 (100.0 * f1_binary (y_test, pred, test->n)) : NAN;
  if (pred_test)
    memcpy (pred_test, pred, test->n * sizeof (gint32));
  return TRUE;
}

gboolean
stsim_transfer_split (const StsimTransferMatrix *train, const gint32 *y_train, const StsimTransferMatrix *dev,
                      const gint32 *y_dev, const StsimTransferMatrix *test, const gint32 *y_test, guint n_classes,
                      const StsimTransferConfig *cfg, StsimTransferScore *score, GError **error)
{
  if (!check_matrix (train, "train", error) || !check_matrix (dev, "dev", error) ||
      !check_matrix (test, "test", error))
    return FALSE;
  memset (score, 0, sizeof *score);
  score->f1 = NAN;
  g_autofree gint32 *tr = iota (train->n), *dv = iota (dev->n), *te = iota (test->n);
  double scores[N_L2], tests[N_L2];
  for (gsize r = 0; r < N_L2; r++) {
    Clf k;
    clf_init (&k, train, n_classes, cfg, L2_GRID[r]);
    clf_fit (&k, tr, y_train, train->n, dev, dv, y_dev, dev->n);
    scores[r] = py_round2 (100.0 * clf_predict (&k, dev, k.w, dv, y_dev, dev->n, NULL) / (double) dev->n);
    /* SentEval refits the chosen penalty from the same seed: the same model. */
    tests[r] = py_round2 (100.0 * clf_predict (&k, test, k.w, te, y_test, test->n, NULL) / (double) test->n);
    clf_clear (&k);
    score->n_fits++;
  }
  gsize best = argmax_first (scores, N_L2);
  score->devacc = scores[best];
  score->acc = tests[best];
  score->reg = L2_GRID[best];
  return TRUE;
}
