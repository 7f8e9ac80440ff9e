/* good.c: a test-only plugin with one component of each kind and parameter
 * tables that exercise every parameter type. Uses the public headers only,
 * as a real plugin would. Built twice: libstsim-test-good.so and, to test the
 * unique plugin name rule, libstsim-test-good-copy.so. */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>

/* ---- encoder test-hash: words hashed into dim buckets, L2-normalised ------------- */

static const StsimParamSpec hash_params[] = {
  { "dim", STSIM_PARAM_INT, "8", .min = 1, .max = 1024, .blurb = "vector size" },
  { "scale", STSIM_PARAM_DOUBLE, "1", .min = 0, .max = 10, .blurb = "multiplies every coordinate" },
  { "lowercase", STSIM_PARAM_BOOL, "true", .blurb = "fold ASCII case before hashing" },
  { "prefix", STSIM_PARAM_STRING, NULL, .blurb = "prepended to every sentence (unset: nothing)" },
  { "pooling", STSIM_PARAM_ENUM, "mean", .choices = "mean|sum|max", .blurb = "how word vectors combine" },
  { "vocab", STSIM_PARAM_PATH, "${data}/vocab", .blurb = "a folder (never read)" },
  { "salt", STSIM_PARAM_INT, "0", .blurb = "hash salt", .flags = STSIM_PARAM_EXPERT },
  { "old_name", STSIM_PARAM_STRING, NULL, .blurb = "use prefix instead", .flags = STSIM_PARAM_DEPRECATED },
  { NULL }
};

typedef struct {
  gsize    dim;
  double   scale;
  gboolean lowercase;
  guint    salt;
} Hash;

static gpointer
hash_create (const StsimParams *p, StsimContext *ctx, GError **error)
{
  Hash *h = g_new0 (Hash, 1);
  h->dim = stsim_params_get_int (p, "dim");
  h->scale = stsim_params_get_double (p, "scale");
  h->lowercase = stsim_params_get_bool (p, "lowercase");
  h->salt = (guint) stsim_params_get_int (p, "salt");
  return h;
}

static gsize
hash_dim (gpointer state)
{
  return ((Hash *) state)->dim;
}

static gboolean
hash_encode (gpointer state, const char *const *s, gsize n, float *out, GError **error)
{
  Hash *h = state;
  for (gsize i = 0; i < n; i++) {
    g_auto(GStrv) words = g_strsplit (s[i], " ", -1);
    float *v = out + i * h->dim;
    double norm = 0;
    memset (v, 0, h->dim * sizeof (float));
    for (guint w = 0; words[w]; w++) {
      g_autofree char *word = h->lowercase ? g_ascii_strdown (words[w], -1) : g_strdup (words[w]);
      if (*word)
        v[(g_str_hash (word) ^ h->salt) % h->dim] += 1;
    }
    for (gsize j = 0; j < h->dim; j++)
      norm += (double) v[j] * v[j];
    for (gsize j = 0; j < h->dim && norm > 0; j++)
      v[j] = (float) (v[j] / sqrt (norm) * h->scale);
  }
  return TRUE;
}

static const StsimEncoderVTable hash_vtable = { .dim = hash_dim, .encode = hash_encode };
static const StsimComponentDesc hash_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "test-hash", .summary = "hashed bag of words (tests only)",
  .params = hash_params, .create = hash_create, .destroy = g_free, STSIM_VTABLE (hash_vtable) };

/* ---- evaluator test-eval: cosines of three fixed pairs ----------------------------- */

static const StsimParamSpec eval_params[] = {
  { "tag", STSIM_PARAM_STRING, NULL, .blurb = "copied into the report", .flags = STSIM_PARAM_REQUIRED },
  { "scale", STSIM_PARAM_DOUBLE, "100", .min = 0, .max = 1000, .blurb = "multiplies the cosines" },
  { NULL }
};

typedef struct {
  char  *tag;
  double scale;
} Eval;

static gpointer
eval_create (const StsimParams *p, StsimContext *ctx, GError **error)
{
  Eval *e = g_new0 (Eval, 1);
  e->tag = g_strdup (stsim_params_get_string (p, "tag"));
  e->scale = stsim_params_get_double (p, "scale");
  return e;
}

static void
eval_destroy (gpointer state)
{
  Eval *e = state;
  g_free (e->tag);
  g_free (e);
}

static gboolean
eval_evaluate (gpointer state, StsimComponent *encoder, StsimEvalMode mode, JsonObject *report, double *primary,
               GError **error)
{
  static const char *const s[] = { "a man plays a flute", "a man plays the flute", "the cat sleeps",
                                   "a dog runs", "same words here", "same words here" };
  Eval *e = state;
  gsize dim = stsim_encoder_dim (encoder);
  g_autofree float *v = g_new0 (float, G_N_ELEMENTS (s) * dim);
  JsonObject *table = json_object_new ();
  double sum = 0;

  if (!stsim_encoder_prepare (encoder, s, G_N_ELEMENTS (s), error) ||
      !stsim_encoder_encode (encoder, s, G_N_ELEMENTS (s), v, error)) {
    json_object_unref (table);
    return FALSE;
  }
  for (guint p = 0; p < 3; p++) {
    const float *a = v + 2 * p * dim, *b = a + dim;
    double dot = 0, na = 0, nb = 0, cos;
    char name[8];
    for (gsize j = 0; j < dim; j++)
      dot += (double) a[j] * b[j], na += (double) a[j] * a[j], nb += (double) b[j] * b[j];
    cos = na > 0 && nb > 0 ? dot / sqrt (na * nb) : 0;
    g_snprintf (name, sizeof name, "pair%u", p + 1);
    json_object_set_double_member (table, name, cos * e->scale);
    sum += cos * e->scale;
  }
  json_object_set_double_member (table, "avg", sum / 3);
  json_object_set_string_member (report, "tag", e->tag);
  json_object_set_string_member (report, "mode", mode == STSIM_EVAL_TEST ? "test" : "dev");
  json_object_set_object_member (report, "table", table);
  *primary = sum / 3;
  return TRUE;
}

static const StsimEvaluatorVTable eval_vtable = { .evaluate = eval_evaluate };
static const StsimComponentDesc eval_desc = {
  .kind = STSIM_KIND_EVALUATOR, .name = "test-eval", .summary = "cosines of three fixed pairs (tests only)",
  .params = eval_params, .create = eval_create, .destroy = eval_destroy, STSIM_VTABLE (eval_vtable) };

/* ---- teacher test-teacher: refers to an encoder, which must already exist --------- */

static const StsimParamSpec teacher_params[] = {
  { "encoder", STSIM_PARAM_REFS, NULL, .choices = "encoder", .blurb = "the encoder it scores with",
    .flags = STSIM_PARAM_REQUIRED },
  { "temperature", STSIM_PARAM_DOUBLE, "0.05", .min = 1e-4, .max = 10, .blurb = "softmax temperature" },
  { NULL }
};

typedef struct {
  StsimComponent *encoder;
} Teacher;

static gpointer
teacher_create (const StsimParams *p, StsimContext *ctx, GError **error)
{
  const char *const *refs = stsim_params_get_refs (p, "encoder", NULL);
  StsimComponent *enc = stsim_context_lookup (ctx, refs[0]);
  Teacher *t;
  if (!enc) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "encoder '%s' does not exist yet", refs[0]);
    return NULL;
  }
  t = g_new0 (Teacher, 1);
  t->encoder = enc;
  return t;
}

static void
teacher_destroy (gpointer state)
{
  Teacher *t = state;
  /* The encoder must outlive its users: destruction runs in reverse order. */
  g_assert_cmpuint (stsim_encoder_dim (t->encoder), >, 0);
  g_free (t);
}

static gboolean
teacher_similarity (gpointer state, StsimTrainStep *step, float *sim, GError **error)
{
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "test-teacher cannot score");
  return FALSE;
}

static const StsimTeacherVTable teacher_vtable = { .similarity = teacher_similarity };
static const StsimComponentDesc teacher_desc = {
  .kind = STSIM_KIND_TEACHER, .name = "test-teacher", .summary = "a teacher that only checks references",
  .params = teacher_params, .create = teacher_create, .destroy = teacher_destroy, STSIM_VTABLE (teacher_vtable) };

/* ---- objective test-objective ---------------------------------------------------- */

static const StsimParamSpec objective_params[] = {
  { "teachers", STSIM_PARAM_REFS, NULL, .choices = "teacher", .blurb = "teacher sections (optional)" },
  { "loss", STSIM_PARAM_ENUM, "listnet", .choices = "listnet|listmle", .blurb = "ranking loss" },
  { "margin", STSIM_PARAM_DOUBLE, "0.1", .min = 0, .max = 1, .blurb = "a margin" },
  { "log", STSIM_PARAM_PATH, NULL, .blurb = "a file to log to (unset: none)" },
  { NULL }
};

static gpointer
objective_create (const StsimParams *p, StsimContext *ctx, GError **error)
{
  gsize n = 0;
  const char *const *refs = stsim_params_is_set (p, "teachers") ? stsim_params_get_refs (p, "teachers", &n) : NULL;
  for (gsize i = 0; i < n; i++)
    if (!stsim_context_lookup (ctx, refs[i])) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "teacher '%s' does not exist yet", refs[i]);
      return NULL;
    }
  return g_new0 (int, 1);
}

static gboolean
objective_loss (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "test-objective has no loss");
  return FALSE;
}

static const StsimObjectiveVTable objective_vtable = { .loss = objective_loss };
static const StsimComponentDesc objective_desc = {
  .kind = STSIM_KIND_OBJECTIVE, .name = "test-objective", .summary = "an objective that only checks references",
  .params = objective_params, .create = objective_create, .destroy = g_free, STSIM_VTABLE (objective_vtable) };

STSIM_PLUGIN_DEFINE ("test-good", "1.2.3", "MIT", "test plugin: one component of each kind", NULL,
                     &hash_desc, &eval_desc, &teacher_desc, &objective_desc)
