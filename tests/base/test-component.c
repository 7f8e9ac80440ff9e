/* The checked component calls of component.c and the one component lookup:
 * fake components whose plugins were "built" with short vtables (or with
 * NULL ops) are refused with errors that name the component and the op, and
 * never crash; stsim_context_find names the label, the kind and the
 * existing labels. */
#include <string.h>

#include "stsim/stsim-registry.h"

/* ---- fake ops ------------------------------------------------------------- */

static int fake_state;            /* every fake component's state */
static int fake_model_object;     /* what fake_model hands out as the network */
static int fake_store_object;     /* ... and fake_params as the one store */
static int prepared;              /* sentences the last prepare op saw */

static gpointer
fake_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return &fake_state;
}

static void
fake_destroy (gpointer state)
{
}

static gsize
fake_dim (gpointer state)
{
  return 3;
}

static gboolean
fake_encode (gpointer state, const char *const *s, gsize n, float *out, GError **error)
{
  for (gsize i = 0; i < 3 * n; i++)
    out[i] = (float) i;
  return TRUE;
}

static gboolean
fake_prepare (gpointer state, const char *const *s, gsize n, GError **error)
{
  prepared = (int) n;
  return TRUE;
}

static struct _StsimModel *
fake_model (gpointer state)
{
  return (struct _StsimModel *) &fake_model_object;
}

static struct _StsimModel *
fake_no_model (gpointer state)
{
  return NULL;
}

static int
fake_eval_pooler (gpointer state)
{
  return 7;
}

static gboolean
fake_loss_none (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  return TRUE;  /* "succeeds" without a loss */
}

static gboolean
fake_loss_silent_failure (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error)
{
  return FALSE;  /* fails without an error */
}

static struct _StsimParamStore *const *
fake_params_null (gpointer state, gsize *n)
{
  *n = 3;  /* NULL must still mean none */
  return NULL;
}

static struct _StsimParamStore *const *
fake_params (gpointer state, gsize *n)
{
  static struct _StsimParamStore *const stores[] = { (struct _StsimParamStore *) &fake_store_object };
  *n = 1;
  return stores;
}

static gboolean
fake_similarity (gpointer state, StsimTrainStep *step, float *sim, GError **error)
{
  sim[0] = 0.5f;
  return TRUE;
}

static gboolean
fake_prepare_corpus_fails (gpointer state, const char *const *texts, gsize n, GError **error)
{
  return FALSE;
}

/* ---- fake descriptors ------------------------------------------------------- */

/* An encoder plugin built before model, eval_pooler and encode_sparse existed. */
typedef struct {
  gsize (*dim) (gpointer);
  gboolean (*prepare) (gpointer, const char *const *, gsize, GError **);
  gboolean (*encode) (gpointer, const char *const *, gsize, float *, GError **);
} OldEncoderVTable;
static const OldEncoderVTable old_encoder_vt = { fake_dim, fake_prepare, fake_encode };
static const StsimComponentDesc old_encoder = { .kind = STSIM_KIND_ENCODER, .name = "old-enc", .create = fake_create,
                                                .destroy = fake_destroy, STSIM_VTABLE (old_encoder_vt) };

/* A current encoder whose network is not there (model() gives NULL). */
static const StsimEncoderVTable empty_encoder_vt = { .dim = fake_dim, .encode = fake_encode, .model = fake_no_model };
static const StsimComponentDesc empty_encoder = { .kind = STSIM_KIND_ENCODER, .name = "empty-enc",
                                                  .create = fake_create, .destroy = fake_destroy,
                                                  STSIM_VTABLE (empty_encoder_vt) };

/* A neural one: model and eval_pooler. */
static const StsimEncoderVTable neural_encoder_vt = { .dim = fake_dim, .encode = fake_encode, .model = fake_model,
                                                      .eval_pooler = fake_eval_pooler };
static const StsimComponentDesc neural_encoder = { .kind = STSIM_KIND_ENCODER, .name = "neural-enc",
                                                   .create = fake_create, .destroy = fake_destroy,
                                                   STSIM_VTABLE (neural_encoder_vt) };

/* An encoder whose encode is NULL (never past the registry, but callable). */
static const StsimEncoderVTable broken_encoder_vt = { .dim = fake_dim };
static const StsimComponentDesc broken_encoder = { .kind = STSIM_KIND_ENCODER, .name = "broken-enc",
                                                   .create = fake_create, .destroy = fake_destroy,
                                                   STSIM_VTABLE (broken_encoder_vt) };

/* An objective built before params existed: one op. */
typedef struct {
  gboolean (*loss) (gpointer, StsimTrainStep *, StsimTensor **, GError **);
} OldObjectiveVTable;
static const OldObjectiveVTable old_objective_vt = { fake_loss_none };
static const StsimComponentDesc old_objective = { .kind = STSIM_KIND_OBJECTIVE, .name = "old-obj",
                                                  .create = fake_create, .destroy = fake_destroy,
                                                  STSIM_VTABLE (old_objective_vt) };

static const StsimObjectiveVTable null_params_objective_vt = { fake_loss_silent_failure, fake_params_null };
static const StsimComponentDesc null_params_objective = { .kind = STSIM_KIND_OBJECTIVE, .name = "null-params-obj",
                                                          .create = fake_create, .destroy = fake_destroy,
                                                          STSIM_VTABLE (null_params_objective_vt) };

static const StsimObjectiveVTable params_objective_vt = { .params = fake_params };  /* and no loss */
static const StsimComponentDesc params_objective = { .kind = STSIM_KIND_OBJECTIVE, .name = "params-obj",
                                                     .create = fake_create, .destroy = fake_destroy,
                                                     STSIM_VTABLE (params_objective_vt) };

/* A teacher built before prepare_corpus existed, and one whose prepare_corpus fails silently. */
typedef struct {
  gboolean (*similarity) (gpointer, StsimTrainStep *, float *, GError **);
} OldTeacherVTable;
static const OldTeacherVTable old_teacher_vt = { fake_similarity };
static const StsimParamSpec teacher_params[] = {
  { "encoder", STSIM_PARAM_REFS, NULL, .choices = "encoder", .blurb = "the wrapped encoder" },
  { NULL }
};
static const StsimComponentDesc old_teacher = { .kind = STSIM_KIND_TEACHER, .name = "old-teacher",
                                                .params = teacher_params, .create = fake_create,
                                                .destroy = fake_destroy, STSIM_VTABLE (old_teacher_vt) };
static const StsimTeacherVTable failing_teacher_vt = { .prepare_corpus = fake_prepare_corpus_fails };  /* no similarity */
static const StsimComponentDesc failing_teacher = { .kind = STSIM_KIND_TEACHER, .name = "failing-teacher",
                                                    .params = teacher_params, .create = fake_create,
                                                    .destroy = fake_destroy, STSIM_VTABLE (failing_teacher_vt) };

/* ---- helpers ----------------------------------------------------------------- */

/* @desc as @label in @ctx; @ref, when set, is a teacher's `encoder` reference. */
static StsimComponent *
add (StsimContext *ctx, const StsimComponentDesc *desc, const char *label, const char *ref)
{
  g_autoptr(GError) error = NULL;
  StsimParams *params = stsim_params_new (desc->params);
  if (ref)
    g_assert_true (stsim_params_set (params, "encoder", ref, &error));
  g_assert_true (stsim_params_finish (params, &error));
  g_assert_no_error (error);
  StsimComponent *c = stsim_component_new (desc, label, params, ctx, &error);
  g_assert_no_error (error);
  g_assert_true (stsim_context_add (ctx, c, &error));
  return c;
}

#define assert_error_says(err, code, text)                                   \
  G_STMT_START {                                                             \
    g_assert_error ((err), STSIM_ERROR, (code));                             \
    if (!strstr ((err)->message, (text)))                                    \
      g_error ("'%s' does not contain '%s'", (err)->message, (text));        \
    g_clear_error (&(err));                                                  \
  } G_STMT_END

/* ---- tests ------------------------------------------------------------------- */

static void
test_encoder_ops (void)
{
  g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  StsimComponent *old = add (ctx, &old_encoder, "encoder.old", NULL);
  StsimComponent *empty = add (ctx, &empty_encoder, "encoder.empty", NULL);
  StsimComponent *neural = add (ctx, &neural_encoder, "encoder.neural", NULL);
  StsimComponent *broken = add (ctx, &broken_encoder, "encoder.broken", NULL);
  g_autoptr(GError) err = NULL;
  const char *s[] = { "a", "b" };
  float out[6] = { 0 };
  int pooler = -1;
  g_autoptr(GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr(GArray) val = g_array_new (FALSE, FALSE, sizeof (float));

  /* What the old plugin has works. */
  g_assert_cmpuint (stsim_encoder_dim (old), ==, 3);
  g_assert_true (stsim_encoder_prepare (old, s, 2, &err));
  g_assert_cmpint (prepared, ==, 2);
  g_assert_true (stsim_encoder_encode (old, s, 2, out, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (out[5], ==, 5.0f);
  /* Ops past its vtable_size: the queries say no, the calls refuse. */
  g_assert_false (stsim_encoder_has_model (old));
  g_assert_false (stsim_encoder_has_eval_pooler (old));
  g_assert_false (stsim_encoder_has_sparse (old));
  g_assert_null (stsim_encoder_model (old, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "encoder.old (encoder 'old-enc'): its plugin does not implement model()");
  g_assert_false (stsim_encoder_eval_pooler (old, &pooler, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "does not implement eval_pooler()");
  g_assert_cmpint (pooler, ==, -1);
  g_assert_false (stsim_encoder_encode_sparse (old, "a", idx, val, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "no sparse encoding");
  /* A model op that gives none, and a NULL prepare (a no-op). */
  g_assert_true (stsim_encoder_has_model (empty));
  g_assert_null (stsim_encoder_model (empty, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "encoder.empty (encoder 'empty-enc'): model() gave none");
  g_assert_null (stsim_encoder_model (empty, NULL));
  prepared = 0;
  g_assert_true (stsim_encoder_prepare (empty, s, 2, &err));
  g_assert_cmpint (prepared, ==, 0);
  /* The neural one. */
  g_assert_true (stsim_encoder_model (neural, &err) == (struct _StsimModel *) &fake_model_object);
  g_assert_true (stsim_encoder_eval_pooler (neural, &pooler, &err));
  g_assert_no_error (err);
  g_assert_cmpint (pooler, ==, 7);
  /* A NULL required op is refused, not called. */
  g_assert_false (stsim_encoder_encode (broken, s, 2, out, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "encoder.broken (encoder 'broken-enc'): its plugin does not implement encode()");
}

static void
test_objective_ops (void)
{
  g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  StsimComponent *old = add (ctx, &old_objective, "objective.old", NULL);
  StsimComponent *nullp = add (ctx, &null_params_objective, "objective.nullp", NULL);
  StsimComponent *withp = add (ctx, &params_objective, "objective.withp", NULL);
  StsimComponent *enc = add (ctx, &neural_encoder, "encoder", NULL);
  StsimTrainStep *step = (StsimTrainStep *) &fake_state;  /* the fakes never look at it */
  StsimTensor *loss = (StsimTensor *) &fake_state;
  g_autoptr(GError) err = NULL;
  gsize n = 99;

  /* A loss op that "succeeds" without a loss, one that fails silently, a missing one. */
  g_assert_false (stsim_objective_loss (old, step, &loss, &err));
  assert_error_says (err, STSIM_ERROR_PLUGIN, "objective.old (objective 'old-obj'): loss() succeeded but gave no loss");
  g_assert_null (loss);
  g_assert_false (stsim_objective_loss (nullp, step, &loss, &err));
  assert_error_says (err, STSIM_ERROR_PLUGIN, "objective.nullp (objective 'null-params-obj'): loss() failed without");
  g_assert_false (stsim_objective_loss (withp, step, &loss, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "objective.withp (objective 'params-obj'): its plugin does not implement loss()");
  /* params: absent (old plugin) and NULL both mean none; a store comes through. */
  g_assert_false (stsim_objective_has_params (old));
  g_assert_null (stsim_objective_params (old, &n));
  g_assert_cmpuint (n, ==, 0);
  n = 99;
  g_assert_true (stsim_objective_has_params (nullp));
  g_assert_null (stsim_objective_params (nullp, &n));
  g_assert_cmpuint (n, ==, 0);
  struct _StsimParamStore *const *stores = stsim_objective_params (withp, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (stores[0] == (struct _StsimParamStore *) &fake_store_object);
  /* A wrong kind is an error, whichever way round. */
  g_assert_false (stsim_objective_loss (enc, step, &loss, &err));
  assert_error_says (err, STSIM_ERROR_INVALID, "encoder (encoder 'neural-enc'): loss() is an op of objective components");
  g_assert_null (stsim_encoder_model (old, &err));
  assert_error_says (err, STSIM_ERROR_INVALID, "model() is an op of encoder components, not of objectives");
  g_assert_false (stsim_objective_has_params (enc));
  g_assert_false (stsim_encoder_has_model (withp));
}

static void
test_teacher_ops (void)
{
  g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  StsimComponent *old = add (ctx, &old_teacher, "teacher.old", NULL);
  StsimComponent *failing = add (ctx, &failing_teacher, "teacher.failing", NULL);
  StsimTrainStep *step = (StsimTrainStep *) &fake_state;
  g_autoptr(GError) err = NULL;
  const char *texts[] = { "x" };
  float sim[1] = { 0 };

  g_assert_true (stsim_teacher_similarity (old, step, sim, &err));
  g_assert_no_error (err);
  g_assert_cmpfloat (sim[0], ==, 0.5f);
  g_assert_false (stsim_teacher_has_prepare_corpus (old));
  g_assert_true (stsim_teacher_prepare_corpus (old, texts, 1, &err));  /* nothing to prepare */
  g_assert_no_error (err);
  g_assert_true (stsim_teacher_has_prepare_corpus (failing));
  g_assert_false (stsim_teacher_prepare_corpus (failing, texts, 1, &err));
  assert_error_says (err, STSIM_ERROR_PLUGIN, "teacher.failing (teacher 'failing-teacher'): prepare_corpus() failed");
  g_assert_false (stsim_teacher_similarity (failing, step, sim, &err));
  assert_error_says (err, STSIM_ERROR_UNSUPPORTED, "its plugin does not implement similarity()");
}

static void
test_evaluator_kind (void)
{
  g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  StsimComponent *enc = add (ctx, &neural_encoder, "encoder", NULL);
  StsimComponent *obj = add (ctx, &old_objective, "objective", NULL);
  g_autoptr(JsonObject) report = json_object_new ();
  g_autoptr(GError) err = NULL;

  g_assert_false (stsim_evaluator_evaluate (obj, enc, STSIM_EVAL_DEV, report, NULL, &err));
  assert_error_says (err, STSIM_ERROR_INVALID, "objective (objective 'old-obj'): evaluate() is an op of evaluator");
}

static void
test_find (void)
{
  g_autoptr(StsimContext) ctx = stsim_context_new (NULL, 1, 1);
  g_autoptr(GError) err = NULL;

  g_assert_null (stsim_context_find (ctx, STSIM_KIND_ENCODER, NULL, &err));
  assert_error_says (err, STSIM_ERROR_RECIPE, "no enabled encoder section");
  StsimComponent *frozen = add (ctx, &neural_encoder, "encoder.frozen", NULL);
  /* A teacher-wrapped encoder is the default only while it is the only one. */
  add (ctx, &old_teacher, "teacher", "encoder.frozen");
  g_assert_true (stsim_context_find (ctx, STSIM_KIND_ENCODER, NULL, &err) == frozen);
  StsimComponent *main = add (ctx, &neural_encoder, "encoder.main", NULL);
  g_assert_true (stsim_context_find (ctx, STSIM_KIND_ENCODER, NULL, &err) == main);
  g_assert_true (stsim_context_find (ctx, STSIM_KIND_ENCODER, "encoder.frozen", &err) == frozen);
  g_assert_no_error (err);
  /* Labels that are not there, or of another kind. */
  g_assert_null (stsim_context_find (ctx, STSIM_KIND_ENCODER, "main", &err));
  assert_error_says (err, STSIM_ERROR_RECIPE, "no enabled encoder section is labelled 'main'; did you mean 'encoder.main'?");
  g_assert_null (stsim_context_find (ctx, STSIM_KIND_ENCODER, "encoder.mian", &err));
  assert_error_says (err, STSIM_ERROR_RECIPE,
                     "no enabled encoder section is labelled 'encoder.mian'; the encoder sections: 'encoder.frozen', "
                     "'encoder.main'");
  g_assert_null (stsim_context_find (ctx, STSIM_KIND_ENCODER, "teacher", &err));
  assert_error_says (err, STSIM_ERROR_RECIPE, "'teacher' is a teacher section, not an enabled encoder");
  g_assert_null (stsim_context_find (ctx, STSIM_KIND_EVALUATOR, "x", &err));
  assert_error_says (err, STSIM_ERROR_RECIPE, "the evaluator sections: none");
  /* Two candidates: the error lists them (not the wrapped one). */
  add (ctx, &neural_encoder, "encoder.b", NULL);
  g_assert_null (stsim_context_find (ctx, STSIM_KIND_ENCODER, NULL, &err));
  assert_error_says (err, STSIM_ERROR_RECIPE, "2 encoder sections ('encoder.main', 'encoder.b'); name the one meant");
  g_assert_true (stsim_context_find (ctx, STSIM_KIND_TEACHER, NULL, &err) != NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/component/encoder-ops", test_encoder_ops);
  g_test_add_func ("/component/objective-ops", test_objective_ops);
  g_test_add_func ("/component/teacher-ops", test_teacher_ops);
  g_test_add_func ("/component/evaluator-kind", test_evaluator_kind);
  g_test_add_func ("/component/find", test_find);
  return g_test_run ();
}
