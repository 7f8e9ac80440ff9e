/* rank-distill.c: RankCSE's listwise ranking distillation (method.md §5)
 * as the objective `rank-distill`, and the ranking-consistency term alone
 * as `rank-consistency`. README.md beside this file maps the equations to
 * the functions.
 *
 *   S[i, j] = cos(z1_i, z2_j)                       student list (§5.2)
 *   T[i, j] = Σ_k α_k · cos_k(t_i, t_j) / τ2         teacher list (§5.3)
 *   ListNet (§5.4):  L = (1/B) Σ_i Σ_{j≠i} −q_ij log p_ij,
 *                    q_i = softmax_{j≠i} T[i, ·],  p_i = softmax_{j≠i} S[i, ·]/τ3
 *   ListMLE (§5.5):  L = (1/B) Σ_i Σ_k [log Σ_{m≥k} e^{ℓ_i,π(m)} − ℓ_i,π(k)],
 *                    ℓ = S/τ3, π_i = columns by descending T[i, ·]
 *   consistency (§5.6): (1/B) Σ_i JSD(softmax(S[i,·]/τ1) ‖ softmax(Sᵀ[i,·]/τ1))
 *
 * rank-distill returns L_rank + β·L_cons (β = consistency_weight, 0 by
 * default); the recipe's weight of the section is γ. Every loss is built
 * from autograd ops on the step's tape; the teacher side is constant. */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>

static const StsimParamSpec rank_params[] = {
  { "teachers", STSIM_PARAM_REFS, NULL, .choices = "teacher", .flags = STSIM_PARAM_REQUIRED,
    .blurb = "labels of the teacher sections whose similarity lists are distilled (teacher.a, teacher.b)" },
  { "teacher_weights", STSIM_PARAM_STRING, NULL,
    .blurb = "alpha of each teacher, comma-separated (default: 1; two teachers 0.33, 0.67 as RankCSE; else equal)" },
  { "tau2", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 100,
    .blurb = "teacher temperature: T = sum_k alpha_k cos_k / tau2" },
  { "tau3", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 100,
    .blurb = "student temperature of the ranking loss (the community code runs 0.05)" },
  { "form", STSIM_PARAM_ENUM, "listnet", .choices = "listnet|listmle|mse",
    .blurb = "listnet: cross-entropy of the top-one distributions; listmle: Plackett-Luce over the teacher's order; "
             "mse: squared error of the off-diagonal cosines against the teachers' mixed cosines (no temperatures; "
             "not RankCSE's, a regression baseline)" },
  { "diag", STSIM_PARAM_BOOL, "true",
    .blurb = "listmle: include the positive pair (ranked first) in each list, as the published code; listnet never does" },
  { "tie_break", STSIM_PARAM_ENUM, "shuffle", .choices = "shuffle|index",
    .blurb = "listmle: order of equal teacher scores: a seeded column shuffle per step, or ascending column" },
  { "listmle_variant", STSIM_PARAM_ENUM, "exact", .choices = "exact|community", .flags = STSIM_PARAM_EXPERT,
    .blurb = "community: subtract the row max and add 1e-7 inside the log, as the published code" },
  { "consistency_weight", STSIM_PARAM_DOUBLE, "0", .min = 0, .max = 1e6,
    .blurb = "beta of the ranking-consistency JSD between the two dropout views (0 = off)" },
  { "tau1", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 100,
    .blurb = "temperature of the consistency distributions" },
  { "consistency", STSIM_PARAM_ENUM, "jsd", .choices = "jsd|community_negentropy", .flags = STSIM_PARAM_EXPERT,
    .blurb = "jsd: the Jensen-Shannon divergence; community_negentropy: the published code's bug, for parity only" },
  { NULL }
};

static const StsimParamSpec consistency_params[] = {
  { "tau1", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 100,
    .blurb = "temperature of the consistency distributions" },
  { "consistency", STSIM_PARAM_ENUM, "jsd", .choices = "jsd|community_negentropy", .flags = STSIM_PARAM_EXPERT,
    .blurb = "jsd: the Jensen-Shannon divergence; community_negentropy: the published code's bug, for parity only" },
  { NULL }
};

typedef enum { FORM_LISTNET, FORM_LISTMLE, FORM_MSE, FORM_NONE } RankForm;

typedef struct {
  StsimContext *ctx;
  char        **labels;     /* teacher labels */
  double       *alpha;
  gsize         n_teachers;
  double        tau2, tau3, tau1;
  RankForm      form;
  gboolean      diag;
  gboolean      shuffle;
  gboolean      community_mle;
  double        beta;
  gboolean      community_cons;
} RankDistill;

/* Stream of the ListMLE tie-breaking shuffle (stsim-rng.h: plugins use USER + k). */
#define RANK_RNG_STREAM (STSIM_RNG_STREAM_USER + 5)

static void
rank_destroy (gpointer state)
{
  RankDistill *r = state;
  if (!r)
    return;
  g_strfreev (r->labels);
  g_free (r->alpha);
  g_free (r);
}

static gboolean
parse_weights (RankDistill *r, const char *text, GError **error)
{
  r->alpha = g_new (double, r->n_teachers);
  if (!text) {
    for (gsize k = 0; k < r->n_teachers; k++)
      r->alpha[k] = r->n_teachers == 2 ? (k == 0 ? 0.33 : 0.67) : 1.0 / r->n_teachers;
    return TRUE;
  }
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  gsize n = g_strv_length (parts);
  if (n != r->n_teachers) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "teacher_weights: %" G_GSIZE_FORMAT " value(s) for %" G_GSIZE_FORMAT " teacher(s); give one alpha "
                 "per label of teachers, in the same order", n, r->n_teachers);
    return FALSE;
  }
  double sum = 0;
  for (gsize k = 0; k < n; k++) {
    char *s = g_strstrip (parts[k]), *end = NULL;
    double v = g_ascii_strtod (s, &end);
    if (!*s || *end || !isfinite (v) || v < 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                   "teacher_weights: '%s' is not a finite number >= 0 (e.g. teacher_weights = 0.33, 0.67)", s);
      return FALSE;
    }
    r->alpha[k] = v;
    sum += v;
  }
  if (sum <= 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "teacher_weights: all zero; no teacher would count");
    return FALSE;
  }
  return TRUE;
}

static gpointer
rank_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  RankDistill *r = g_new0 (RankDistill, 1);
  gsize n = 0;
  const char *const *refs = stsim_params_get_refs (params, "teachers", &n);
  r->ctx = ctx;
  r->labels = g_strdupv ((char **) refs);
  r->n_teachers = n;
  if (n == 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "teachers: name at least one teacher section");
    rank_destroy (r);
    return NULL;
  }
  if (!parse_weights (r, stsim_params_get_string (params, "teacher_weights"), error)) {
    rank_destroy (r);
    return NULL;
  }
  r->tau2 = stsim_params_get_double (params, "tau2");
  r->tau3 = stsim_params_get_double (params, "tau3");
  r->tau1 = stsim_params_get_double (params, "tau1");
  const char *form = stsim_params_get_string (params, "form");
  r->form = g_str_equal (form, "listmle") ? FORM_LISTMLE : g_str_equal (form, "mse") ? FORM_MSE : FORM_LISTNET;
  r->diag = stsim_params_get_bool (params, "diag");
  r->shuffle = g_str_equal (stsim_params_get_string (params, "tie_break"), "shuffle");
  r->community_mle = g_str_equal (stsim_params_get_string (params, "listmle_variant"), "community");
  r->beta = stsim_params_get_double (params, "consistency_weight");
  r->community_cons = g_str_equal (stsim_params_get_string (params, "consistency"), "community_negentropy");
  return r;
}

static gpointer
consistency_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  RankDistill *r = g_new0 (RankDistill, 1);
  r->ctx = ctx;
  r->form = FORM_NONE;
  r->beta = 1.0;
  r->tau1 = stsim_params_get_double (params, "tau1");
  r->community_cons = g_str_equal (stsim_params_get_string (params, "consistency"), "community_negentropy");
  return r;
}

/* ---- the teacher list ------------------------------------------------------------ */

/* cos_k [B, B] of teacher @label for this step. Shared through the step's
 * scratch data ("teacher-sim:<label>"), so several objectives that use one
 * teacher run it once; a test may put a chosen matrix there. */
static const float *
teacher_matrix (RankDistill *r, StsimTrainStep *step, const char *label, gsize B, GError **error)
{
  g_autofree char *key = g_strdup_printf ("teacher-sim:%s", label);
  const float *have = stsim_train_step_get_data (step, key);
  if (have)
    return have;
  StsimComponent *c = r->ctx ? stsim_context_find (r->ctx, STSIM_KIND_TEACHER, label, error) : NULL;
  if (!c) {
    if (!r->ctx)
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE,
                   "teachers: '%s' is not an enabled [teacher] section of this recipe", label);
    else
      g_prefix_error (error, "teachers: ");
    return NULL;
  }
  float *sim = g_new (float, B * B);
  if (!stsim_teacher_similarity (c, step, sim, error)) {
    g_prefix_error (error, "[%s]: ", label);
    g_free (sim);
    return NULL;
  }
  for (gsize i = 0; i < B * B; i++)
    if (!isfinite (sim[i])) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                   "[%s]: the teacher's similarity [%" G_GSIZE_FORMAT ", %" G_GSIZE_FORMAT "] is %g; check its "
                   "checkpoint", label, i / B, i % B, sim[i]);
      g_free (sim);
      return NULL;
    }
  stsim_train_step_set_data (step, key, sim, g_free);
  return sim;
}

/* T = Σ_k α_k · cos_k / τ2 into t[B, B], accumulated in double. */
static gboolean
teacher_scores (RankDistill *r, StsimTrainStep *step, gsize B, float *t, GError **error)
{
  g_autofree double *acc = g_new0 (double, B * B);
  for (gsize k = 0; k < r->n_teachers; k++) {
    const float *cos_k = teacher_matrix (r, step, r->labels[k], B, error);
    if (!cos_k)
      return FALSE;
    for (gsize i = 0; i < B * B; i++)
      acc[i] += r->alpha[k] * (double) cos_k[i] / r->tau2;
  }
  for (gsize i = 0; i < B * B; i++)
    t[i] = (float) acc[i];
  return TRUE;
}

/* ---- the losses ------------------------------------------------------------------- */

/* Regression of the similarity matrix (not a RankCSE loss; a baseline for
 * it): (1/(B(B−1))) Σ_{i≠j} (s_ij − c_ij)² with c = Σ_k α_k cos_k = τ2·T,
 * the teachers' mixed cosines themselves, so τ2 and τ3 play no part. */
static StsimTensor *
mse_loss (RankDistill *r, StsimTape *tape, StsimTensor *s, const float *T, gsize B)
{
  gint64 shape[2] = { (gint64) B, (gint64) B };
  StsimTensor *c = stsim_tensor_new (tape, 2, shape), *mask = stsim_tensor_new (tape, 2, shape);
  for (gsize i = 0; i < B; i++)
    for (gsize j = 0; j < B; j++) {
      c->data[i * B + j] = (float) ((double) T[i * B + j] * r->tau2);
      mask->data[i * B + j] = i == j ? 0.0f : 1.0f;
    }
  StsimTensor *d = stsim_mul (tape, stsim_sub (tape, s, c), mask);
  return stsim_scale (tape, stsim_sum (tape, stsim_mul (tape, d, d)), (float) (1.0 / ((double) B * (B - 1))));
}

/* ListNet (§5.4): q_i = softmax over j≠i of T[i, ·] (q_ii = 0), then
 * −(1/B) Σ q log p with p the student's softmax over j≠i. */
static StsimTensor *
listnet_loss (StsimTape *tape, StsimTensor *logits, const float *T, gsize B)
{
  g_autofree float *q = g_new0 (float, B * B);
  for (gsize i = 0; i < B; i++) {
    double m = -INFINITY, s = 0;
    for (gsize j = 0; j < B; j++)
      if (j != i)
        m = MAX (m, (double) T[i * B + j]);
    for (gsize j = 0; j < B; j++)
      if (j != i)
        s += exp ((double) T[i * B + j] - m);
    for (gsize j = 0; j < B; j++)
      q[i * B + j] = j == i ? 0.0f : (float) (exp ((double) T[i * B + j] - m) / s);
  }
  return stsim_soft_cross_entropy (tape, logits, q, TRUE);
}

typedef struct {
  const float  *row;    /* T[i, ·] */
  const gint32 *rank;   /* tie-break rank of each column */
} SortCtx;

static gint
by_teacher_desc (gconstpointer a, gconstpointer b, gpointer data)
{
  const SortCtx *c = data;
  gint32 x = *(const gint32 *) a, y = *(const gint32 *) b;
  /* float32 comparison of the stored scores: equal floats are ties. */
  if (c->row[x] != c->row[y])
    return c->row[x] > c->row[y] ? -1 : 1;
  return c->rank[x] - c->rank[y];
}

/* π_i for every row into perm[B, K]: the diagonal first when included,
 * then the other columns by descending T[i, ·], equal scores in the order
 * of one seeded column shuffle per step (the published code's tie-break)
 * or by ascending column. */
static gsize
listmle_permutation (RankDistill *r, StsimTrainStep *step, const float *T, gsize B, gint32 *perm)
{
  g_autofree gint32 *rank = g_new (gint32, B);
  if (r->shuffle) {
    g_autofree gint32 *order = g_new (gint32, B);
    StsimRng rng;
    stsim_train_step_init_rng (step, RANK_RNG_STREAM, &rng);
    stsim_rng_permutation (&rng, order, (gint64) B);
    for (gsize p = 0; p < B; p++)
      rank[order[p]] = (gint32) p;
  } else
    for (gsize j = 0; j < B; j++)
      rank[j] = (gint32) j;
  gsize K = r->diag ? B : B - 1;
  for (gsize i = 0; i < B; i++) {
    gint32 *out = perm + i * K;
    gsize n = 0;
    if (r->diag)
      out[n++] = (gint32) i;
    gint32 *rest = out + n;
    gsize m = 0;
    for (gsize j = 0; j < B; j++)
      if (j != i)
        rest[m++] = (gint32) j;
    SortCtx c = { T + i * B, rank };
    g_qsort_with_data (rest, (gint) m, sizeof (gint32), by_teacher_desc, &c);
  }
  return K;
}

/* ListMLE (§5.5) over the gathered logits G[i, k] = ℓ[i, π_i(k)]. */
static StsimTensor *
listmle_loss (RankDistill *r, StsimTape *tape, StsimTensor *logits, const gint32 *perm, gsize B, gsize K)
{
  StsimTensor *g = stsim_gather_cols (tape, logits, perm, (gint64) K);
  if (!g)
    return NULL;
  StsimTensor *terms;
  if (!r->community_mle) {
    terms = stsim_sub (tape, stsim_logcumsumexp_rev (tape, g), g);
  } else {
    /* Community/allRank: ℓ' = ℓ − max_k ℓ (the gradient flows through the
     * max: a gather of the argmax column), then log(Σ_{m≥k} e^{ℓ'} + 1e-7). */
    g_autofree gint32 *arg = g_new (gint32, B * K);
    for (gsize i = 0; i < B; i++) {
      gsize best = 0;
      for (gsize k = 1; k < K; k++)
        if (g->data[i * K + k] > g->data[i * K + best])
          best = k;
      for (gsize k = 0; k < K; k++)
        arg[i * K + k] = (gint32) best;
    }
    StsimTensor *gp = stsim_sub (tape, g, stsim_gather_cols (tape, g, arg, (gint64) K));
    gint64 shape[2] = { (gint64) B, (gint64) K };
    StsimTensor *eps = stsim_tensor_new (tape, 2, shape);
    for (gint64 i = 0; i < eps->numel; i++)
      eps->data[i] = 1e-7f;
    StsimTensor *c = stsim_add (tape, stsim_exp (tape, stsim_logcumsumexp_rev (tape, gp)), eps);
    terms = stsim_sub (tape, stsim_log (tape, c, 0.0f), gp);
  }
  return stsim_scale (tape, stsim_sum (tape, terms), (float) (1.0 / B));
}

/* Ranking consistency (§5.6) between the views: P_i = softmax(S[i,·]/τ1),
 * Q_i = softmax(Sᵀ[i,·]/τ1), (1/B) Σ_i ½KL(P‖M) + ½KL(Q‖M), M = (P+Q)/2.
 * The community variant is what its clamped log(M) computes:
 * ½/B Σ (P log P + Q log Q) − 1e-7 (a negative entropy, not a divergence). */
static StsimTensor *
consistency_loss (RankDistill *r, StsimTape *tape, StsimTensor *z1, StsimTensor *z2, gsize B)
{
  const float inv = (float) (1.0 / r->tau1);
  StsimTensor *a = stsim_scale (tape, stsim_cosine_matrix (tape, z1, z2), inv);
  StsimTensor *at = stsim_scale (tape, stsim_cosine_matrix (tape, z2, z1), inv);  /* Sᵀ, computed directly */
  StsimTensor *logp = stsim_log_softmax (tape, a), *logq = stsim_log_softmax (tape, at);
  StsimTensor *p = stsim_softmax (tape, a), *q = stsim_softmax (tape, at);
  StsimTensor *sum;
  if (!r->community_cons) {
    /* log M with a floor at the smallest normal float: where M underflows,
     * P and Q are (sub)normal zeros and their terms vanish anyway. */
    StsimTensor *logm = stsim_log (tape, stsim_axpby (tape, 0.5f, p, 0.5f, q), 1.17549435e-38f);
    StsimTensor *kp = stsim_sum (tape, stsim_mul (tape, p, stsim_sub (tape, logp, logm)));
    StsimTensor *kq = stsim_sum (tape, stsim_mul (tape, q, stsim_sub (tape, logq, logm)));
    return stsim_axpby (tape, (float) (0.5 / B), kp, (float) (0.5 / B), kq);
  }
  StsimTensor *hp = stsim_sum (tape, stsim_mul (tape, p, logp));
  StsimTensor *hq = stsim_sum (tape, stsim_mul (tape, q, logq));
  sum = stsim_axpby (tape, (float) (0.5 / B), hp, (float) (0.5 / B), hq);
  if (!sum)
    return NULL;
  StsimTensor *c = stsim_tensor_new (tape, 0, NULL);
  c->data[0] = -1e-7f;
  return stsim_add (tape, sum, c);
}

static gboolean
rank_loss (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  RankDistill *r = state;
  StsimTape *tape = stsim_train_step_get_tape (step);
  const gsize B = stsim_train_step_get_n_sentences (step);
  StsimTensor *z1 = stsim_train_step_get_view (step, 0, error);
  StsimTensor *z2 = z1 ? stsim_train_step_get_view (step, 1, error) : NULL;
  if (!z2)
    return FALSE;
  StsimTensor *s = stsim_cosine_matrix (tape, z1, z2);
  if (B < 2) {
    /* One sentence has no list to rank (an epoch's last partial batch). */
    *loss = stsim_scale (tape, stsim_sum (tape, s), 0.0f);
    return *loss != NULL;
  }

  StsimTensor *total = NULL;
  if (r->form != FORM_NONE) {
    g_autofree float *T = g_new (float, B * B);
    if (!teacher_scores (r, step, B, T, error))
      return FALSE;
    StsimTensor *logits = stsim_scale (tape, s, (float) (1.0 / r->tau3));
    if (r->form == FORM_LISTNET)
      total = listnet_loss (tape, logits, T, B);
    else if (r->form == FORM_MSE)
      total = mse_loss (r, tape, s, T, B);
    else {
      g_autofree gint32 *perm = g_new (gint32, B * B);
      gsize K = listmle_permutation (r, step, T, B, perm);
      total = listmle_loss (r, tape, logits, perm, B, K);
    }
    if (total)
      stsim_train_step_log (step, "rank", total->data[0]);
    /* Agreement of the top-1 neighbour (j≠i) of student and teacher: a cheap
     * view of how far the distillation has come. */
    gsize agree = 0;
    for (gsize i = 0; i < B; i++) {
      gsize bs = i == 0 ? 1 : 0, bt = bs;
      for (gsize j = 0; j < B; j++) {
        if (j == i)
          continue;
        if (s->data[i * B + j] > s->data[i * B + bs])
          bs = j;
        if (T[i * B + j] > T[i * B + bt])
          bt = j;
      }
      agree += bs == bt;
    }
    stsim_train_step_log (step, "top1_agreement", (double) agree / B);
  }
  if (r->beta > 0) {
    StsimTensor *c = consistency_loss (r, tape, z1, z2, B);
    if (c)
      stsim_train_step_log (step, "consistency", c->data[0]);
    total = total ? stsim_axpby (tape, 1.0f, total, (float) r->beta, c) : stsim_scale (tape, c, (float) r->beta);
  } else if (!total)
    total = stsim_scale (tape, stsim_sum (tape, s), 0.0f);

  if (!total || !isfinite (total->data[0])) {
    g_set_error (error, STSIM_ERROR, total ? STSIM_ERROR_NUMERIC : STSIM_ERROR_FAILED,
                 "%s: building the loss failed (B = %" G_GSIZE_FORMAT ")%s",
                 r->form == FORM_NONE ? "rank-consistency" : "rank-distill", B,
                 total ? ": it is not finite; check the temperatures" : "");
    return FALSE;
  }
  *loss = total;
  return TRUE;
}

static const StsimObjectiveVTable rank_vtable = { .loss = rank_loss };

static const StsimComponentDesc rank_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "rank-distill",
  .summary = "RankCSE ranking distillation from teachers' similarity lists (ListNet or ListMLE), optional JSD consistency",
  .params = rank_params, .create = rank_create, .destroy = rank_destroy,
  STSIM_VTABLE (rank_vtable),
};

static const StsimComponentDesc consistency_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "rank-consistency",
  .summary = "RankCSE ranking consistency: Jensen-Shannon divergence of the two views' similarity distributions",
  .params = consistency_params, .create = consistency_create, .destroy = rank_destroy,
  STSIM_VTABLE (rank_vtable),
};

STSIM_PLUGIN_DEFINE ("rank-distill", "0.1.0", "MIT",
                     "RankCSE listwise ranking distillation (ListNet, ListMLE) and ranking consistency",
                     "@inproceedings{liu2023rankcse,\n"
                     "  title = {{RankCSE}: Unsupervised Sentence Representations Learning via Learning to Rank},\n"
                     "  author = {Liu, Jiduan and Liu, Jiahao and Wang, Qifan and Wang, Jingang and Wu, Wei and "
                     "Xian, Yunsen and Zhao, Dongyan and Chen, Kai and Yan, Rui},\n"
                     "  booktitle = {ACL},\n  year = {2023}\n}\n",
                     &rank_desc, &consistency_desc)
