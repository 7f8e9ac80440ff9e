/* ops-attention.c: fused multi-head self-attention over padded or packed
 * sequences.
 *
 * Shape legend: N rows (all tokens), H hidden, nh heads, dh = H/nh; for a
 * sequence s: R query rows, Kn keys (its first Kn rows).
 *   forward, per (s, head):  S = Q_h·K_hᵀ/sqrt(dh)  [R, Kn]
 *                            P = softmax_rows(S) ; Pd = dropout(P)
 *                            C_h = Pd·V_h  [R, dh]  -> columns h·dh.. of out [N, H]
 *   backward:                dPd = dC_h·V_hᵀ ; dV_h += Pdᵀ·dC_h
 *                            dP = dPd ⊙ keep/(1-p) ; dS = P ⊙ (dP - rowsum(dP ⊙ P))
 *                            dQ_h += dS·K_h/sqrt(dh) ; dK_h += dSᵀ·Q_h/sqrt(dh)
 * Keys past Kn are pad keys: HF adds -10000 to their scores, which makes
 * their softmax weight exactly 0 in fp32, so they are simply left out here.
 * (s, head) items are independent and write disjoint blocks of the
 * gradients, so they run in parallel with no reduction (deterministic). The
 * small per-item GEMMs go to stsim_k_sgemm, which OpenBLAS runs on the calling
 * thread inside an OpenMP region. P is saved; the dropout mask is
 * regenerated from the counter RNG in backward instead of being stored. */
#include <omp.h>
#include "numerics-private.h"
#include "numerics-profile.h"

typedef struct {
  const StsimSeq *seqs;     /* copy in the arena */
  gsize   n_seqs;
  int     n_heads;
  gint64  H, dh;
  gint64  ldq, ldk, ldv;    /* row strides of q, k, v */
  gint64  qoff, koff, voff; /* column offsets into their tensors */
  gint64 *poff;             /* per sequence: offset of its P block (all heads) */
  gint64 *kpoff, *kstride;  /* per sequence: where its dropout mask starts and its head stride
                               in the single-process batch (tape places), or NULL: poff, R·Kn */
  gint64  max_p;            /* largest R·Kn */
  float  *P;                /* saved probabilities (pre-dropout) */
  float   p_drop;
  guint32 op;
  guint64 step;             /* keys the dropout mask, with op */
  gboolean fused;           /* q, k, v are column blocks of in[0] */
} AttnCtx;

static inline gint64 seq_keys (const StsimSeq *s) { return s->keys > 0 ? s->keys : s->rows; }

/* Short sequences (keys <= SMALL_KEYS, dh <= SMALL_DH) skip cblas_sgemm: at
 * 32x32x64 a call costs more in packing and dispatch than its 131 kFLOP.
 * The loops below keep one operand transposed in a per-thread scratch so
 * every inner loop is a contiguous axpy the compiler vectorises (no
 * horizontal sums). One (sequence, head) item runs on one thread in a fixed
 * order, so results are the same at any thread count. */
#define SMALL_KEYS 64
#define SMALL_DH 128

static inline gboolean
use_small (gint64 Kn, gint64 dh)
{
  return Kn <= SMALL_KEYS && dh <= SMALL_DH;
}

/* t[d*n + j] = a[j*lda + d]: rows [n, dh] of a transposed to [dh, n]. */
STSIM_CLONES static void
leaf_transpose (float *restrict t, const float *restrict a, gint64 lda, gint64 n, gint64 dh)
{
  for (gint64 j = 0; j < n; j++)
    for (gint64 d = 0; d < dh; d++)
      t[d * n + j] = a[j * lda + d];
}

/* C[r, :n] (=|+=) alpha · Σ_d A[r, d] · Bt[d, :n]   (row strides lda, ldb, ldc; k = inner size). */
STSIM_CLONES static void
leaf_rows_times_t (float *restrict C, gint64 ldc, const float *restrict A, gint64 lda, const float *restrict Bt,
                   gint64 ldb, gint64 R, gint64 k, gint64 n, float alpha, gboolean acc)
{
  for (gint64 r = 0; r < R; r++) {
    float *c = C + r * ldc;
    const float *a = A + r * lda;
    float tmp[SMALL_DH > SMALL_KEYS ? SMALL_DH : SMALL_KEYS];
#pragma omp simd
    for (gint64 j = 0; j < n; j++)
      tmp[j] = 0.0f;
    for (gint64 d = 0; d < k; d++) {
      float x = a[d];
      const float *b = Bt + d * ldb;
#pragma omp simd
      for (gint64 j = 0; j < n; j++)
        tmp[j] += x * b[j];
    }
    if (acc)
#pragma omp simd
      for (gint64 j = 0; j < n; j++)
        c[j] += alpha * tmp[j];
    else
#pragma omp simd
      for (gint64 j = 0; j < n; j++)
        c[j] = alpha * tmp[j];
  }
}

/* D[j, :dh] += alpha · Σ_r P[r, j] · X[r, :dh]   (Pᵀ·X into rows of stride ldd). */
STSIM_CLONES static void
leaf_t_times_rows (float *restrict D, gint64 ldd, const float *restrict P, gint64 R, gint64 Kn,
                   const float *restrict X, gint64 ldx, gint64 dh, float alpha)
{
  for (gint64 j = 0; j < Kn; j++) {
    float tmp[SMALL_DH];
#pragma omp simd
    for (gint64 d = 0; d < dh; d++)
      tmp[d] = 0.0f;
    for (gint64 r = 0; r < R; r++) {
      float p = P[r * Kn + j];
      const float *x = X + r * ldx;
#pragma omp simd
      for (gint64 d = 0; d < dh; d++)
        tmp[d] += p * x[d];
    }
    float *dst = D + j * ldd;
#pragma omp simd
    for (gint64 d = 0; d < dh; d++)
      dst[d] += alpha * tmp[d];
  }
}

/* What the (sequence, head) items of one backward pass share. */
typedef struct {
  const AttnCtx *c;
  const float   *q, *k, *v, *dout;
  float         *dq, *dk, *dv;     /* column-offset gradients; NULL where none is wanted */
  gboolean       gq, gk, gv;
  float         *scratch;          /* per thread: dP and Pd, 2·max_p */
  guint8        *keepbuf;          /* per thread: the dropout mask, max_p */
  float         *tscratch;         /* per thread: SMALL_KEYS·SMALL_DH */
  guint64        seed;
  float          scale, keep_scale;
} AttnBackward;

/* dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place of the R rows of dP. */
static inline void
softmax_backward_rows (float *dP, const float *P, gint64 R, gint64 Kn)
{
  for (gint64 r = 0; r < R; r++) {
    float *dpr = dP + r * Kn;
    const float *pr = P + r * Kn;
    float dot = 0.0f;
    for (gint64 j = 0; j < Kn; j++)
      dot += dpr[j] * pr[j];
    for (gint64 j = 0; j < Kn; j++)
      dpr[j] = pr[j] * (dpr[j] - dot);
  }
}

/* The dropout mask of item (sequence @si, head @h): ps = R·Kn elements. */
static inline void
attention_keep (const AttnCtx *c, guint64 seed, gint64 si, gint64 h, gint64 ps, guint8 *keep)
{
  gint64 start = c->kpoff ? c->kpoff[si] + h * c->kstride[si] : c->poff[si] + h * ps;
  stsim_dropout_keep (seed, c->step, c->op, start, ps, c->p_drop, keep);
}

/* Item @it = (sequence it / nh, head it % nh) of the backward pass, on thread @tid's scratch. */
static inline void
attention_backward_item (const AttnBackward *b, gint64 it, int tid)
{
  const AttnCtx *c = b->c;
  gint64 H = c->H, dh = c->dh, nh = c->n_heads;
  const StsimSeq *s = &c->seqs[it / nh];
  gint64 h = it % nh, R = s->rows, Kn = seq_keys (s), ps = R * Kn;
  if (R == 0)
    return;
  float *P = c->P + c->poff[it / nh] + h * ps;
  float *dP = b->scratch + (gint64) tid * 2 * c->max_p, *Pd = dP + c->max_p;
  guint8 *keep = b->keepbuf + (gint64) tid * c->max_p;
  const float *qh = b->q + s->offset * c->ldq + h * dh;
  const float *kh = b->k + s->offset * c->ldk + h * dh;
  const float *vh = b->v + s->offset * c->ldv + h * dh;
  const float *dC = b->dout + s->offset * H + h * dh;
  const float *Pused = P;
  if (c->p_drop > 0.0f) {
    attention_keep (c, b->seed, it / nh, h, ps, keep);
    for (gint64 i = 0; i < ps; i++)
      Pd[i] = keep[i] ? P[i] * b->keep_scale : 0.0f;
    Pused = Pd;
  }
  gboolean small = use_small (Kn, dh);
  float *tbuf = b->tscratch + (gint64) tid * SMALL_KEYS * SMALL_DH;
  /* dPd = dC·Vᵀ */
  if (small) {
    leaf_transpose (tbuf, vh, c->ldv, Kn, dh);
    leaf_rows_times_t (dP, Kn, dC, H, tbuf, Kn, R, dh, Kn, 1.0f, FALSE);
  } else {
    stsim_k_sgemm (FALSE, TRUE, R, Kn, dh, 1.0f, dC, H, vh, c->ldv, 0.0f, dP, Kn);
  }
  if (b->gv && small)
    leaf_t_times_rows (b->dv + s->offset * c->ldv + h * dh, c->ldv, Pused, R, Kn, dC, H, dh, 1.0f);
  else if (b->gv)
    stsim_k_sgemm (TRUE, FALSE, Kn, dh, R, 1.0f, Pused, Kn, dC, H, 1.0f, b->dv + s->offset * c->ldv + h * dh, c->ldv);
  if (!b->gq && !b->gk)
    return;
  if (c->p_drop > 0.0f)
    for (gint64 i = 0; i < ps; i++)
      dP[i] = keep[i] ? dP[i] * b->keep_scale : 0.0f;
  softmax_backward_rows (dP, P, R, Kn);
  if (small) {
    if (b->gq)
      leaf_rows_times_t (b->dq + s->offset * c->ldq + h * dh, c->ldq, dP, Kn, kh, c->ldk, R, Kn, dh, b->scale, TRUE);
    if (b->gk)
      leaf_t_times_rows (b->dk + s->offset * c->ldk + h * dh, c->ldk, dP, R, Kn, qh, c->ldq, dh, b->scale);
    return;
  }
  if (b->gq)
    stsim_k_sgemm (FALSE, FALSE, R, dh, Kn, b->scale,
                   dP, Kn, kh, c->ldk, 1.0f, b->dq + s->offset * c->ldq + h * dh, c->ldq);
  if (b->gk)
    stsim_k_sgemm (TRUE, FALSE, Kn, dh, R, b->scale,
                   dP, Kn, qh, c->ldq, 1.0f, b->dk + s->offset * c->ldk + h * dh, c->ldk);
}

static void
attention_backward (StsimTape *tape, StsimNode *node)
{
  AttnCtx *c = node->ctx;
  StsimTensor *tq = node->in[0], *tk = c->fused ? node->in[0] : node->in[1], *tv = c->fused ? node->in[0] : node->in[2];
  AttnBackward b = { .c = c, .gq = stsim_needs_grad (tq), .gk = stsim_needs_grad (tk), .gv = stsim_needs_grad (tv) };
  b.dq = b.gq ? stsim_grad_acquire_acc (tape, tq) + c->qoff : NULL;
  b.dk = b.gk ? (c->fused ? b.dq - c->qoff : stsim_grad_acquire_acc (tape, tk)) + c->koff : NULL;
  b.dv = b.gv ? (c->fused ? b.dq - c->qoff : stsim_grad_acquire_acc (tape, tv)) + c->voff : NULL;
  b.q = tq->data + c->qoff;
  b.k = tk->data + c->koff;
  b.v = tv->data + c->voff;
  b.dout = node->out->grad;
  b.scale = 1.0f / sqrtf ((float) c->dh);
  b.keep_scale = c->p_drop > 0.0f ? 1.0f / (1.0f - c->p_drop) : 1.0f;
  b.seed = tape->seed;
  int nt = omp_get_max_threads ();
  b.scratch = stsim_tape_alloc (tape, (gsize) (2 * c->max_p * nt) * sizeof (float));
  b.keepbuf = stsim_tape_alloc (tape, (gsize) (c->max_p * nt));
  b.tscratch = stsim_tape_alloc (tape, (gsize) (SMALL_KEYS * SMALL_DH * nt) * sizeof (float));
  gint64 items = (gint64) c->n_seqs * c->n_heads;

#pragma omp parallel for schedule(dynamic, 4) if (items > 1)
  for (gint64 it = 0; it < items; it++)
    attention_backward_item (&b, it, omp_get_thread_num ());
}

/* FALSE (with a critical) unless q, k, v and the sequences fit together; *N and *H of the output. */
static gboolean
attention_check (StsimTensor *tq, StsimTensor *tk, StsimTensor *tv, gboolean fused, const StsimSeq *seqs,
                 gsize n_seqs, int n_heads, gint64 *N_out, gint64 *H_out)
{
  char b1[64];
  gint64 N = stsim_tensor_rows (tq);
  gint64 H = fused ? stsim_tensor_cols (tq) / 3 : stsim_tensor_cols (tq);
  if (n_heads <= 0 || H <= 0 || H % n_heads != 0 || (fused && stsim_tensor_cols (tq) != 3 * H)
      || (!fused && (!stsim_tensor_same_shape (tq, tk) || !stsim_tensor_same_shape (tq, tv)))) {
    g_critical ("stsim_attention: q %s: need [N, H] q, k, v of one shape (or [N, 3H] fused) with H divisible by %d heads",
                stsim_tensor_shape_string (tq, b1, sizeof b1), n_heads);
    return FALSE;
  }
  gint64 end = 0;
  for (gsize i = 0; i < n_seqs; i++) {
    const StsimSeq *s = &seqs[i];
    if (s->offset < end || s->rows < 0 || s->keys < 0 || s->offset + MAX (s->rows, s->keys) > N) {
      g_critical ("stsim_attention: sequence %" G_GSIZE_FORMAT " (offset %d, rows %d, keys %d) is out of "
                  "order, overlaps the previous one or runs past the %" G_GINT64_FORMAT " rows",
                  i, s->offset, s->rows, s->keys, N);
      return FALSE;
    }
    end = s->offset + MAX (s->rows, s->keys);
  }
  *N_out = N;
  *H_out = H;
  return TRUE;
}

/* With the tape's row places: each sequence's dropout key in the
 * single-process batch (its rows·keys block per head starts there). FALSE
 * (with a critical) unless the places are these sequences. A sequence's
 * first R·Kn probabilities here are the first of its block there, as it
 * only lacks pad query rows at the end. */
static gboolean
attention_place (StsimTape *tape, AttnCtx *c, const StsimSeq *seqs, gsize n_seqs)
{
  const StsimRowPlace *pl = tape->places;
  c->kpoff = stsim_tape_alloc (tape, sizeof (gint64) * MAX (n_seqs, 1));
  c->kstride = stsim_tape_alloc (tape, sizeof (gint64) * MAX (n_seqs, 1));
  for (gsize i = 0; i < n_seqs; i++) {
    gint64 R = seqs[i].rows, Kn = seq_keys (&seqs[i]);
    if (tape->n_places != n_seqs || pl[i].local_row != seqs[i].offset || pl[i].rows != R
        || (seqs[i].keys == 0 && pl[i].global_rows != R) || pl[i].global_rows < R) {
      g_critical ("stsim_attention: the tape's %" G_GSIZE_FORMAT " row places are not these %" G_GSIZE_FORMAT
                  " sequences (sequence %" G_GSIZE_FORMAT " differs)", tape->n_places, n_seqs, i);
      return FALSE;
    }
    c->kpoff[i] = (gint64) c->n_heads * pl[i].global_pairs;
    c->kstride[i] = pl[i].global_rows * Kn;
  }
  return TRUE;
}

/* The op's context on @tape: layout, P offsets (poff[n_seqs] = all of P), dropout key. */
static AttnCtx *
attention_ctx_new (StsimTape *tape, const StsimSeq *seqs, gsize n_seqs, int n_heads, gint64 H, gboolean fused,
                   float p_drop)
{
  AttnCtx *c = stsim_tape_alloc (tape, sizeof (AttnCtx));
  memset (c, 0, sizeof *c);
  c->n_seqs = n_seqs;
  c->n_heads = n_heads;
  c->H = H;
  c->dh = H / n_heads;
  c->fused = fused;
  c->ldq = c->ldk = c->ldv = fused ? 3 * H : H;
  c->qoff = 0;
  c->koff = fused ? H : 0;
  c->voff = fused ? 2 * H : 0;
  c->poff = stsim_tape_alloc (tape, sizeof (gint64) * (n_seqs + 1));
  gint64 tot = 0;
  for (gsize i = 0; i < n_seqs; i++) {
    gint64 ps = (gint64) seqs[i].rows * seq_keys (&seqs[i]);
    c->poff[i] = tot;
    tot += n_heads * ps;
    c->max_p = MAX (c->max_p, ps);
  }
  c->poff[n_seqs] = tot;
  c->p_drop = tape->training ? p_drop : 0.0f;
  if (c->p_drop > 0.0f)
    c->op = tape->op_counter++;
  c->step = tape->step;
  if (c->p_drop > 0.0f && tape->places && !attention_place (tape, c, seqs, n_seqs))
    return NULL;
  return c;
}

/* What the (sequence, head) items of one forward pass share. */
typedef struct {
  const AttnCtx  *c;
  const StsimSeq *seqs;
  const float    *q, *k, *v;
  float          *out;
  gboolean        rg;             /* P is kept for backward */
  float          *pd_scratch;     /* per thread: Pd, max_p */
  guint8         *keepbuf;        /* per thread: the dropout mask, max_p */
  float          *tscratch;       /* per thread: SMALL_KEYS·SMALL_DH */
  guint64         seed;
  float           scale, keep_scale;
} AttnForward;

/* Item @it = (sequence it / nh, head it % nh) of the forward pass, on thread @tid's scratch. */
static inline void
attention_forward_item (const AttnForward *f, gint64 it, int tid)
{
  const AttnCtx *c = f->c;
  gint64 H = c->H, dh = c->dh, nh = c->n_heads;
  const StsimSeq *s = &f->seqs[it / nh];
  gint64 h = it % nh, R = s->rows, Kn = seq_keys (s), ps = R * Kn;
  if (R == 0)
    return;
  float *P = f->rg ? c->P + c->poff[it / nh] + h * ps : c->P + (gint64) tid * c->max_p;
  const float *qh = f->q + s->offset * c->ldq + h * dh;
  const float *kh = f->k + s->offset * c->ldk + h * dh;
  const float *vh = f->v + s->offset * c->ldv + h * dh;
  gboolean small = use_small (Kn, dh);
  float *tbuf = f->tscratch + (gint64) tid * SMALL_KEYS * SMALL_DH;
  if (small) {
    leaf_transpose (tbuf, kh, c->ldk, Kn, dh);
    leaf_rows_times_t (P, Kn, qh, c->ldq, tbuf, Kn, R, dh, Kn, f->scale, FALSE);
  } else {
    stsim_k_sgemm (FALSE, TRUE, R, Kn, dh, f->scale, qh, c->ldq, kh, c->ldk, 0.0f, P, Kn);
  }
  for (gint64 r = 0; r < R; r++)
    stsim_k_softmax_row (P + r * Kn, P + r * Kn, Kn);
  const float *Pused = P;
  if (c->p_drop > 0.0f) {
    float *Pd = f->pd_scratch + (gint64) tid * c->max_p;
    guint8 *keep = f->keepbuf + (gint64) tid * c->max_p;
    attention_keep (c, f->seed, it / nh, h, ps, keep);
    for (gint64 i = 0; i < ps; i++)
      Pd[i] = keep[i] ? P[i] * f->keep_scale : 0.0f;
    Pused = Pd;
  }
  if (small)   /* V rows are already [Kn, dh] with the right orientation */
    leaf_rows_times_t (f->out + s->offset * H + h * dh, H, Pused, Kn, vh, c->ldv, R, Kn, dh, 1.0f, FALSE);
  else
    stsim_k_sgemm (FALSE, FALSE, R, dh, Kn, 1.0f, Pused, Kn, vh, c->ldv, 0.0f, f->out + s->offset * H + h * dh, H);
}

static StsimTensor *
attention_impl (StsimTape *tape, StsimTensor *tq, StsimTensor *tk, StsimTensor *tv, gboolean fused,
                const StsimSeq *seqs, gsize n_seqs, int n_heads, float p_drop)
{
  g_return_val_if_fail (tape != NULL, NULL);
  if (!tq || !tk || !tv)
    return NULL;
  g_return_val_if_fail (seqs != NULL || n_seqs == 0, NULL);
  g_return_val_if_fail (p_drop >= 0.0f && p_drop < 1.0f, NULL);
  gint64 N, H;
  if (!attention_check (tq, tk, tv, fused, seqs, n_seqs, n_heads, &N, &H))
    return NULL;
  gboolean rg = stsim_tape_wants_grad (tape, tq, tk, tv);
  gint64 oshape[2] = { N, H };
  StsimTensor *out = stsim_tape_out (tape, 2, oshape, rg);
  memset (out->data, 0, (gsize) (N * H) * sizeof (float));

  AttnCtx *c = attention_ctx_new (tape, seqs, n_seqs, n_heads, H, fused, p_drop);
  if (!c)
    return NULL;
  int nt = omp_get_max_threads ();
  /* With grad, P is kept for backward; without, each thread reuses a block. */
  c->P = stsim_tape_alloc (tape, (gsize) MAX (rg ? c->poff[n_seqs] : c->max_p * nt, 1) * sizeof (float));
  AttnForward f = { .c = c, .seqs = seqs, .q = tq->data, .k = tk->data + c->koff, .v = tv->data + c->voff,
                    .out = out->data, .rg = rg, .seed = tape->seed };
  f.pd_scratch = stsim_tape_alloc (tape, (gsize) MAX (c->max_p * nt, 1) * sizeof (float));
  f.keepbuf = stsim_tape_alloc (tape, (gsize) MAX (c->max_p * nt, 1));
  f.tscratch = stsim_tape_alloc (tape, (gsize) (SMALL_KEYS * SMALL_DH * nt) * sizeof (float));
  f.scale = 1.0f / sqrtf ((float) c->dh);
  f.keep_scale = c->p_drop > 0.0f ? 1.0f / (1.0f - c->p_drop) : 1.0f;
  gint64 items = (gint64) n_seqs * n_heads;

#pragma omp parallel for schedule(dynamic, 4) if (items > 1)
  for (gint64 it = 0; it < items; it++)
    attention_forward_item (&f, it, omp_get_thread_num ());

  if (rg) {
    StsimSeq *copy = stsim_tape_alloc (tape, sizeof (StsimSeq) * MAX (n_seqs, 1));
    memcpy (copy, seqs, sizeof (StsimSeq) * n_seqs);
    c->seqs = copy;
    StsimNode *n = fused ? stsim_tape_record (tape, "attention", attention_backward, out, tq, NULL, NULL)
                         : stsim_tape_record (tape, "attention", attention_backward, out, tq, tk, tv);
    n->ctx = c;
  }
  return out;
}

StsimTensor *
stsim_attention (StsimTape *tape, StsimTensor *q, StsimTensor *k, StsimTensor *v,
                 const StsimSeq *seqs, gsize n_seqs, int n_heads, float p_drop)
{
  STSIM_PROF_BEGIN (t0);
  StsimTensor *out = attention_impl (tape, q, k, v, FALSE, seqs, n_seqs, n_heads, p_drop);
  STSIM_PROF_END (t0, "attention.fwd", 0.0);
  return out;
}

StsimTensor *
stsim_attention_qkv (StsimTape *tape, StsimTensor *qkv, const StsimSeq *seqs, gsize n_seqs, int n_heads, float p_drop)
{
  STSIM_PROF_BEGIN (t0);
  StsimTensor *out = attention_impl (tape, qkv, qkv, qkv, TRUE, seqs, n_seqs, n_heads, p_drop);
  STSIM_PROF_END (t0, "attention.fwd", 0.0);
  return out;
}
