/* stsim-plugin.h: what a plugin exports and what the core promises it.
 *
 * One shared object = one StsimPluginDesc, returned by the exported function
 * stsim_plugin_describe(). It lists components; each component has a kind, a
 * name unique within that kind, a parameter table (stsim-params.h), a
 * create/destroy pair and a kind-specific table of operations (vtable).
 * The registry checks all of it before the plugin is trusted.
 *
 * A complete plugin with one encoder component:
 *
 *   static const StsimParamSpec params[] = {
 *     { "dim", STSIM_PARAM_INT, "16", .min = 1, .max = 4096, .blurb = "vector size" },
 *     { NULL }
 *   };
 *   static gpointer my_create (const StsimParams *p, StsimContext *ctx, GError **error) { ... }
 *   static void     my_destroy (gpointer state) { ... }
 *   static gsize    my_dim (gpointer state) { ... }
 *   static gboolean my_encode (gpointer state, const char *const *s, gsize n,
 *                              float *out, GError **error) { ... }
 *   static const StsimEncoderVTable my_vtable = { .dim = my_dim, .encode = my_encode };
 *   static const StsimComponentDesc my_encoder = {
 *     .kind = STSIM_KIND_ENCODER, .name = "my-encoder", .summary = "...",
 *     .params = params, .create = my_create, .destroy = my_destroy,
 *     STSIM_VTABLE (my_vtable) };
 *   STSIM_PLUGIN_DEFINE ("my-plugin", "0.1.0", "MIT", "One encoder", NULL,
 *                        &my_encoder);
 *
 * ABI: the core loads a plugin whose abi_major equals STSIM_ABI_MAJOR and
 * whose abi_minor is <= STSIM_ABI_MINOR. Operations are only ever appended to
 * a vtable; vtable_size tells the core which ones a plugin was built with.
 */
#pragma once
#include <glib.h>
#include <gmodule.h>
#include <json-glib/json-glib.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-params.h"

G_BEGIN_DECLS

#define STSIM_ABI_MAJOR 0
#define STSIM_ABI_MINOR 1

typedef enum {
  STSIM_KIND_ENCODER,    /* sentences -> vectors (and, for neural ones, a trainable network) */
  STSIM_KIND_OBJECTIVE,  /* a weighted loss term of training */
  STSIM_KIND_TEACHER,    /* a frozen scorer of in-batch pairs (ranking distillation) */
  STSIM_KIND_EVALUATOR,  /* scores an encoder on held-out data */
  STSIM_KIND_N_KINDS     /* new kinds are added before this, never in between */
} StsimKind;

STSIM_API
const char *stsim_kind_name (StsimKind kind);                       /* "encoder", ... */
STSIM_API
gboolean    stsim_kind_from_name (const char *name, StsimKind *out);

/* An instance built from one recipe section, e.g. [encoder.main]. */
typedef struct _StsimComponent StsimComponent;
/* What create() may ask of the run: data root, seed, threads, other components. */
typedef struct _StsimContext StsimContext;
/* Opaque types owned by later layers (numerics, trainer). */
typedef struct _StsimTrainStep StsimTrainStep;
typedef struct _StsimTensor StsimTensor;

/* ---- kind: encoder ---------------------------------------------------- */
typedef struct {
  /* Size D of the vectors encode() writes. Required. */
  gsize    (*dim)     (gpointer state);
  /* Optional: all sentences of a task before any encode() of that task
   * (SentEval's prepare), for encoders that need corpus statistics. */
  gboolean (*prepare) (gpointer state, const char *const *sentences, gsize n, GError **error);
  /* Required: eval-mode embeddings of n sentences into out[n, D], row-major. */
  gboolean (*encode)  (gpointer state, const char *const *sentences, gsize n, float *out, GError **error);
  /* Optional, appended in ABI 0.1: the trainable network behind a neural
   * encoder (stsim-model.h). Encoders without one cannot be trained. */
  struct _StsimModel *(*model) (gpointer state);
  /* Optional: the pooler the encoder uses at evaluation (StsimPooler value). */
  int      (*eval_pooler) (gpointer state);
  /* Optional, appended after eval_pooler (vtable_size tells whether a plugin
   * has it): the vector encode() would write for one sentence, as its
   * non-zero coordinates: appends guint32 indices (ascending, each once) to
   * @idx and the float values, bit-identical to encode()'s, to @val. For
   * encoders whose D is large and whose vectors are mostly zeros (bow-idf:
   * one coordinate per vocabulary word), where writing D floats per
   * sentence would cost far more than the sentence. */
  gboolean (*encode_sparse) (gpointer state, const char *sentence, GArray *idx, GArray *val, GError **error);
} StsimEncoderVTable;

/* ---- kind: evaluator -------------------------------------------------- */
typedef enum {
  STSIM_EVAL_TEST,  /* the reported numbers */
  STSIM_EVAL_DEV,   /* model selection during training */
} StsimEvalMode;

typedef struct {
  /* Required: scores @encoder. Fills @report with the evaluator's full
   * results (its schema is documented by the plugin) and *primary with the
   * one number that model selection maximises. */
  gboolean (*evaluate) (gpointer state, StsimComponent *encoder, StsimEvalMode mode,
                        JsonObject *report, double *primary, GError **error);
} StsimEvaluatorVTable;

/* ---- kind: objective -------------------------------------------------- */
typedef struct {
  /* Required: the scalar loss of one training step, built from autograd ops
   * on the step's tape so that its gradient comes for free. */
  gboolean (*loss) (gpointer state, StsimTrainStep *step, StsimTensor **loss, GError **error);
  /* Optional, appended in ABI 0.1: the trainable parameter stores the
   * objective owns (DiffCSE's discriminator and its electra head), each
   * finished and trainable. Returns an array of *n_stores distinct stores,
   * owned by the objective and valid until destroy(), in a fixed order (the
   * resume state keeps them by position); NULL with *n_stores = 0 when it
   * has none (yet). The trainer asks once, before the first step, then
   * updates every store with its optimizer, clips them with the student,
   * all-reduces their gradients over the ranks of a data-parallel run and
   * saves them in its resume state; they are not exported with the encoder.
   * (Until ABI 0.1 was settled this op returned a single store; no plugin
   * outside the tree used it.) */
  struct _StsimParamStore *const *(*params) (gpointer state, gsize *n_stores);
} StsimObjectiveVTable;

/* ---- kind: teacher ---------------------------------------------------- */
typedef struct {
  /* Required: the teacher's pairwise score matrix of the step's B sentences
   * into sim[B, B], row-major. */
  gboolean (*similarity) (gpointer state, StsimTrainStep *step, float *sim, GError **error);
  /* Optional: every training sentence, once before the first step, so that a
   * deterministic teacher can precompute (and cache) what it needs. */
  gboolean (*prepare_corpus) (gpointer state, const char *const *texts, gsize n, GError **error);
} StsimTeacherVTable;

/* ---- descriptors ------------------------------------------------------ */
typedef struct {
  StsimKind             kind;
  const char           *name;      /* [a-z][a-z0-9-]*, unique within its kind */
  const char           *summary;   /* one line */
  const StsimParamSpec *params;    /* terminated by { NULL }; NULL means none */
  gpointer            (*create)  (const StsimParams *params, StsimContext *ctx, GError **error);
  void                (*destroy) (gpointer state);
  const void           *vtable;    /* the Stsim<Kind>VTable of .kind */
  gsize                 vtable_size;
  gpointer              reserved[4];
} StsimComponentDesc;

#define STSIM_VTABLE(vt) .vtable = &(vt), .vtable_size = sizeof (vt)

typedef struct {
  guint32                          abi_major, abi_minor;
  const char                      *name;      /* [a-z][a-z0-9-]* */
  const char                      *version;
  const char                      *license;   /* SPDX identifier */
  const char                      *summary;
  const char                      *citation;  /* BibTeX or NULL */
  const char                      *origin;    /* URL or NULL */
  const StsimComponentDesc *const *components; /* NULL-terminated, at least one */
  gpointer                         reserved[4];
} StsimPluginDesc;

#define STSIM_PLUGIN_SYMBOL "stsim_plugin_describe"
typedef const StsimPluginDesc *(*StsimPluginDescribeFunc) (void);

/* Defines the exported entry point. The components follow the citation. */
#define STSIM_PLUGIN_DEFINE(name_, version_, license_, summary_, citation_, ...)      \
  G_MODULE_EXPORT const StsimPluginDesc *stsim_plugin_describe (void);                 \
  G_MODULE_EXPORT const StsimPluginDesc *stsim_plugin_describe (void)                  \
  {                                                                                    \
    static const StsimComponentDesc *const components_[] = { __VA_ARGS__, NULL };      \
    static const StsimPluginDesc desc_ = {                                             \
      .abi_major = STSIM_ABI_MAJOR, .abi_minor = STSIM_ABI_MINOR,                      \
      .name = (name_), .version = (version_), .license = (license_),                   \
      .summary = (summary_), .citation = (citation_), .components = components_ };     \
    return &desc_;                                                                     \
  }

/* ---- component instances ---------------------------------------------- */
STSIM_API
const StsimComponentDesc *stsim_component_get_desc   (StsimComponent *component);
STSIM_API
const char               *stsim_component_get_label  (StsimComponent *component); /* "encoder.main" */
STSIM_API
const StsimParams        *stsim_component_get_params (StsimComponent *component);
STSIM_API
gpointer                  stsim_component_get_state  (StsimComponent *component);
STSIM_API
StsimKind                 stsim_component_get_kind   (StsimComponent *component);

/* Checked calls: the only way to call a component's ops. Each checks the
 * component's kind and that its plugin implements the op (non-NULL and
 * within its vtable_size); a wrong kind or a missing op is a GError that
 * names the component ("encoder.main (encoder 'bow-idf')") and the op, and
 * an op that fails without an error gets one. Optional ops whose absence
 * means "nothing to do" (encoder prepare, teacher prepare_corpus, objective
 * params) are then no-ops; the stsim_*_has_*() queries tell a caller whether
 * an optional op is there, without an error. */
STSIM_API
gsize    stsim_encoder_dim     (StsimComponent *encoder);
STSIM_API
gboolean stsim_encoder_prepare (StsimComponent *encoder, const char *const *sentences, gsize n, GError **error);
STSIM_API
gboolean stsim_encoder_encode  (StsimComponent *encoder, const char *const *sentences, gsize n,
                                float *out, GError **error);
/* The trainable network behind a neural encoder; NULL with an error
 * (STSIM_ERROR_UNSUPPORTED, "... no trainable network ...") when the encoder
 * has no model op or its op gives none. */
STSIM_API
gboolean            stsim_encoder_has_model (StsimComponent *encoder);
STSIM_API
struct _StsimModel *stsim_encoder_model     (StsimComponent *encoder, GError **error);
/* The pooler (a StsimPooler value) the encoder uses at evaluation. */
STSIM_API
gboolean stsim_encoder_has_eval_pooler (StsimComponent *encoder);
STSIM_API
gboolean stsim_encoder_eval_pooler     (StsimComponent *encoder, int *pooler, GError **error);
/* TRUE when @encoder implements encode_sparse; stsim_encoder_encode_sparse()
 * fails (STSIM_ERROR_UNSUPPORTED) on one that does not, and checks the
 * coordinates it gives (ascending, each once, below dim). */
STSIM_API
gboolean stsim_encoder_has_sparse    (StsimComponent *encoder);
STSIM_API
gboolean stsim_encoder_encode_sparse (StsimComponent *encoder, const char *sentence, GArray *idx, GArray *val,
                                      GError **error);
STSIM_API
gboolean stsim_evaluator_evaluate (StsimComponent *evaluator, StsimComponent *encoder, StsimEvalMode mode,
                                   JsonObject *report, double *primary, GError **error);
/* One step's loss into *@loss; an op that succeeds without one is an error. */
STSIM_API
gboolean stsim_objective_loss (StsimComponent *objective, StsimTrainStep *step, StsimTensor **loss,
                               GError **error);
/* The objective's own parameter stores (see the params op); NULL with
 * *n_stores = 0 when it has none or no params op. */
STSIM_API
gboolean                        stsim_objective_has_params (StsimComponent *objective);
STSIM_API
struct _StsimParamStore *const *stsim_objective_params     (StsimComponent *objective, gsize *n_stores);
STSIM_API
gboolean stsim_teacher_similarity (StsimComponent *teacher, StsimTrainStep *step, float *sim, GError **error);
STSIM_API
gboolean stsim_teacher_has_prepare_corpus (StsimComponent *teacher);
STSIM_API
gboolean stsim_teacher_prepare_corpus     (StsimComponent *teacher, const char *const *texts, gsize n,
                                           GError **error);

/* ---- context ----------------------------------------------------------- */
/* The data root (--data, STSIM_DATA, or the build's default); never NULL. */
STSIM_API
const char     *stsim_context_get_data_dir (StsimContext *ctx);
STSIM_API
guint64         stsim_context_get_seed     (StsimContext *ctx);
STSIM_API
int             stsim_context_get_threads  (StsimContext *ctx);
/* Another component of the same recipe by label ("teacher.t1"), or NULL. */
STSIM_API
StsimComponent *stsim_context_lookup       (StsimContext *ctx, const char *label);
/* The component of @kind labelled @label or, with @label NULL, the only one
 * of @kind (an encoder that a teacher's references name is its frozen
 * scorer and counts only when no other encoder is there). Otherwise NULL
 * and an error (STSIM_ERROR_RECIPE) naming @label and @kind and listing the
 * labels of @kind, for the caller to prefix with the key it read @label
 * from. Only components already created are found (a recipe creates the
 * sections a section refers to before it). */
STSIM_API
StsimComponent *stsim_context_find         (StsimContext *ctx, StsimKind kind, const char *label,
                                            GError **error);
/* The context's components, in the order they were added (instantiation
 * order for a recipe's). */
STSIM_API
StsimComponent *const *stsim_context_get_components (StsimContext *ctx, guint *n_out);

G_END_DECLS
