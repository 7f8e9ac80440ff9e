/* stsim-bench: throughput and memory of encoding and training steps, side by
 * side with the same computations in PyTorch (tests/bench/torch_reference.py).
 *
 *   stsim-bench [--configs mini,small,base] [--workloads encode,simcse,paper]
 *               [--threads 1,2] [--batches synthetic,real] [--steps 5] [--warmup 1]
 *               [--compare-torch] [--json FILE] [--profile]
 *
 * Workloads (batch B = 64 sentences, max_len 32, vocabulary 30522):
 *   encode  eval mode, no gradients: stsim_model_encode of the B sentences
 *           (tokenization included), CLS vectors;
 *   simcse  the trainer's own step (stsim_engine_step, tokenization
 *           included) on recipes/simcse-bert-base.ini: unsupervised SimCSE
 *           (method.md §3.2-3.3), 2B rows (two dropout views), packed
 *           forward, CLS, MLP (dense + tanh), cosine / 0.05, cross-entropy,
 *           backward, clip 1.0, AdamW;
 *   paper   the trainer's step on recipes/paper.ini (method.md §9) with one
 *           teacher, as the PyTorch reference: the SimCSE branch with
 *           DiffCSE's BN projector, ListNet distillation from a frozen
 *           teacher of the same size run every step on the B sentences, BERT
 *           80/10/10 masking (ratio 0.30), a frozen generator of the same size
 *           (train-mode dropout, argmax), a trainable discriminator of the
 *           same size conditioned on z at position 0 and the RTD loss over
 *           all 2B·L positions (pads included, as published);
 *           L = contrast + rank + 0.005·rtd; AdamW on student, head and D.
 * The training workloads build their components from the recipe, with random
 * checkpoints of the bench's size written to a temporary folder.
 * Batches: "synthetic" (every sentence exactly max_len tokens) or "real"
 * (sentences drawn from the corpus with their natural lengths).
 *
 * Every (config, workload, batch kind, threads) cell runs in a child process
 * (`--cell`) so that its peak RSS is its own; with --compare-torch the
 * PyTorch child runs the same batches right after (or before: the order
 * alternates from cell to cell). Models have random weights: the cost of a
 * step does not depend on their values.
 *
 * FLOP count (documented in docs/performance.md): per encoder layer and
 * sequence of l query rows with k keys, 2·l·(4H² + 2H·FF) for the dense
 * layers plus 4·l·k·H for the attention products; the MLM head adds
 * 2·n·(H² + H·V) for the n scored positions; a backward pass counts twice its
 * forward. Only the work an implementation must do is counted: real tokens
 * (the discriminator's pad rows too, since the published RTD loss includes
 * them), so padded implementations get no credit for work on padding. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <glib/gstdio.h>

#include <json-glib/json-glib.h>

#include "stsim/stsim.h"
#include "stsim/stsim-model.h"
#include "stsim/stsim-optim.h"
#include "stsim/stsim-train.h"
#include "stsim/stsim-profile.h"
#include "tool-common.h"
#include "stsim/stsim-bounded.h"

#define VOCAB 30522
#define N_PROFILE 64

typedef struct {
  const char *name;
  int layers, hidden, heads, ff;
} BenchConfig;

static const BenchConfig configs[] = {
  { "mini", 4, 256, 4, 1024 },
  { "small", 4, 512, 8, 2048 },
  { "base", 12, 768, 12, 3072 },
};

static const char *const workload_names[] = { "encode", "simcse", "paper" };
static const char *const kind_names[] = { "synthetic", "real" };

/* ---- options --------------------------------------------------------------- */
static char *opt_configs = NULL, *opt_workloads = NULL, *opt_threads = NULL, *opt_kinds = NULL;
static char *opt_json = NULL, *opt_cell = NULL, *opt_batches_file = NULL, *opt_data = NULL;
static char *opt_python = NULL, *opt_torch_script = NULL, *opt_torch_wait = NULL, *opt_wait = NULL;
static int opt_steps = 5, opt_warmup = 1, opt_batch = 64, opt_max_len = 32;
static gint64 opt_seed = 42;
static gboolean opt_compare = FALSE, opt_profile = FALSE, opt_keep = FALSE;

static GOptionEntry entries[] = {
  { "configs", 0, 0, G_OPTION_ARG_STRING, &opt_configs, "Model sizes (mini,small,base)", "LIST" },
  { "workloads", 0, 0, G_OPTION_ARG_STRING, &opt_workloads, "Workloads (encode,simcse,paper)", "LIST" },
  { "threads", 0, 0, G_OPTION_ARG_STRING, &opt_threads, "Thread counts (default 1,2)", "LIST" },
  { "batches", 0, 0, G_OPTION_ARG_STRING, &opt_kinds, "Batch kinds (synthetic,real)", "LIST" },
  { "steps", 0, 0, G_OPTION_ARG_INT, &opt_steps, "Timed steps per cell (>= 1, default 5)", "N" },
  { "warmup", 0, 0, G_OPTION_ARG_INT, &opt_warmup, "Untimed steps first (default 1)", "N" },
  { "batch-size", 0, 0, G_OPTION_ARG_INT, &opt_batch, "Sentences per step (default 64)", "B" },
  { "max-len", 0, 0, G_OPTION_ARG_INT, &opt_max_len, "Tokens per sentence at most (default 32)", "L" },
  { "seed", 0, 0, G_OPTION_ARG_INT64, &opt_seed, "Seed of batches, weights and dropout", "N" },
  { "compare-torch", 0, 0, G_OPTION_ARG_NONE, &opt_compare, "Also run tests/bench/torch_reference.py", NULL },
  { "python", 0, 0, G_OPTION_ARG_FILENAME, &opt_python, "Python interpreter (default /usr/bin/python3)", "PATH" },
  { "torch-script", 0, 0, G_OPTION_ARG_FILENAME, &opt_torch_script, "torch_reference.py to run", "PATH" },
  { "torch-wait-policy", 0, 0, G_OPTION_ARG_STRING, &opt_torch_wait,
    "OMP_WAIT_POLICY of the PyTorch child (default passive: its best setting here)", "POLICY" },
  { "wait-policy", 0, 0, G_OPTION_ARG_STRING, &opt_wait,
    "OMP_WAIT_POLICY of the stsim child (default passive; 'default' leaves it unset)", "POLICY" },
  { "json", 0, 0, G_OPTION_ARG_FILENAME, &opt_json, "Write all results as JSON", "FILE" },
  { "profile", 0, 0, G_OPTION_ARG_NONE, &opt_profile, "Per-op time breakdown and GEMM efficiency", NULL },
  { "data", 0, 0, G_OPTION_ARG_FILENAME, &opt_data, "Data folder (default STSIM_DATA or the build's)", "DIR" },
  { "keep-batches", 0, 0, G_OPTION_ARG_NONE, &opt_keep, "Keep the batch files (their paths are printed)", NULL },
  { "cell", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_cell, "Run one cell (internal)", "C:W:T" },
  { "batches-file", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &opt_batches_file, "Batch file (internal)", "FILE" },
  { NULL }
};

static const char *
data_dir (void)
{
  static char *dir;  /* the same folder as every tool: stsim_data_dir_resolve */
  if (!dir)
    dir = stsim_data_dir_resolve (opt_data);
  return dir;
}

static double
now (void)
{
  return stsim_prof_now ();
}

static double
median (const double *x, int n)
{
  g_autofree double *s = g_memdup2 (x, sizeof (double) * n);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
      double t = s[j];
      s[j] = s[j - 1];
      s[j - 1] = t;
    }
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static const BenchConfig *
find_config (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (configs); i++)
    if (g_strcmp0 (configs[i].name, name) == 0)
      return &configs[i];
  return NULL;
}

static int
find_name (const char *const *names, gsize n, const char *name)
{
  for (gsize i = 0; i < n; i++)
    if (g_strcmp0 (names[i], name) == 0)
      return (int) i;
  return -1;
}

/* ---- FLOP counts ---------------------------------------------------------------- */

/* Forward FLOPs of an encoder over sequences of @rows query rows and @keys keys. */
static double
encoder_flops (const BenchConfig *c, const gint32 *rows, const gint32 *keys, gsize n)
{
  double H = c->hidden, FF = c->ff, f = 0;
  for (gsize i = 0; i < n; i++)
    f += 2.0 * rows[i] * (4 * H * H + 2 * H * FF) + 4.0 * rows[i] * keys[i] * H;
  return f * c->layers;
}

/* ---- batches ------------------------------------------------------------------- */

/* Single-token lowercase words: a synthetic sentence of 40 of them truncates
 * to exactly max_len tokens whatever max_len <= 41 is. */
static const char *const filler[] = {
  "the", "of", "and", "in", "to", "was", "he", "is", "for", "on", "as", "with", "by", "his", "at", "that",
  "from", "it", "her", "an", "were", "which", "are", "this", "also", "be", "had", "first", "one", "their",
};

typedef struct {
  int     n_steps;
  int     B;
  char ***texts;   /* [n_steps][B] */
} BatchSet;

static void
batch_set_free (BatchSet *s)
{
  if (!s)
    return;
  for (int i = 0; i < s->n_steps; i++)
    g_strfreev (s->texts[i]);
  g_free (s->texts);
  g_free (s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BatchSet, batch_set_free)

static StsimTokenizer *
load_tokenizer (GError **error)
{
  g_autofree char *vocab = g_build_filename (data_dir (), "vocab", "bert-base-uncased", "vocab.txt", NULL);
  return stsim_tokenizer_new_wordpiece (vocab, TRUE, error);
}

/* Draws the batches of one kind and writes them (texts, and the token ids
 * for PyTorch) to a JSON file in @dir. */
static char *
make_batch_file (const char *kind, int n_steps, const char *dir, GError **error)
{
  g_autoptr(StsimTokenizer) tok = load_tokenizer (error);
  if (!tok)
    return NULL;
  StsimRng rng;
  stsim_rng_init (&rng, (guint64) opt_seed, STSIM_RNG_STREAM_SHUFFLE);
  g_autoptr(StsimCorpus) corpus = NULL;
  if (g_strcmp0 (kind, "real") == 0) {
    g_autofree char *cdir = g_build_filename (data_dir (), "corpus", NULL);
    const char *paths[] = { cdir, NULL };
    corpus = stsim_corpus_load_lines (paths, error);
    if (!corpus) {
      g_prefix_error (error, "real batches: ");
      return NULL;
    }
  }
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, kind);
  json_builder_set_member_name (b, "max_len");
  json_builder_add_int_value (b, opt_max_len);
  json_builder_set_member_name (b, "batches");
  json_builder_begin_array (b);
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (int s = 0; s < n_steps; s++) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "texts");
    json_builder_begin_array (b);
    g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
    for (int i = 0; i < opt_batch; i++) {
      char *t;
      if (corpus) {
        t = g_strdup (stsim_corpus_get_text (corpus, (gsize) stsim_rng_range (&rng, 0, stsim_corpus_get_n (corpus)), 0));
      } else {
        GString *g = g_string_new (NULL);
        for (int w = 0; w < 40; w++)
          g_string_append_printf (g, "%s%s", w ? " " : "", filler[stsim_rng_range (&rng, 0, G_N_ELEMENTS (filler))]);
        t = g_string_free (g, FALSE);
      }
      json_builder_add_string_value (b, t);
      g_ptr_array_add (texts, t);
    }
    json_builder_end_array (b);
    json_builder_set_member_name (b, "ids");
    json_builder_begin_array (b);
    for (guint i = 0; i < texts->len; i++) {
      g_array_set_size (ids, 0);
      if (!stsim_tokenizer_encode (tok, texts->pdata[i], -1, opt_max_len, ids, error)) {
        g_prefix_error (error, "batch %d sentence %u: ", s, i);
        return NULL;
      }
      json_builder_begin_array (b);
      for (guint k = 0; k < ids->len; k++)
        json_builder_add_int_value (b, g_array_index (ids, gint32, k));
      json_builder_end_array (b);
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *path = g_build_filename (dir, kind, NULL);
  g_autofree char *file = g_strconcat (path, ".json", NULL);
  if (!tool_write_json (file, root, error))
    return NULL;
  return g_steal_pointer (&file);
}

static BatchSet *
read_batch_file (const char *path, GError **error)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  if (!stsim_json_load_file (p, path, STSIM_LIMIT_CORPUS, error)) {
    g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (p);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonArray *arr = o && json_object_has_member (o, "batches") ? json_object_get_array_member (o, "batches") : NULL;
  if (!arr) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: no \"batches\" array (not a stsim-bench batch file?)", path);
    return NULL;
  }
  g_autoptr(BatchSet) s = g_new0 (BatchSet, 1);
  s->n_steps = (int) json_array_get_length (arr);
  s->texts = g_new0 (char **, MAX (s->n_steps, 1));
  for (int i = 0; i < s->n_steps; i++) {
    JsonObject *bo = json_array_get_object_element (arr, i);
    JsonArray *ta = bo && json_object_has_member (bo, "texts") ? json_object_get_array_member (bo, "texts") : NULL;
    if (!ta || json_array_get_length (ta) == 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: batch %d has no texts", path, i);
      return NULL;
    }
    guint n = json_array_get_length (ta);
    if (i > 0 && (int) n != s->B) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_DATA, "%s: batch %d has %u texts, batch 0 has %d", path, i, n, s->B);
      return NULL;
    }
    s->B = (int) n;
    s->texts[i] = g_new0 (char *, n + 1);
    for (guint k = 0; k < n; k++)
      s->texts[i][k] = g_strdup (json_array_get_string_element (ta, k));
  }
  return g_steal_pointer (&s);
}

/* ---- the models of a cell ---------------------------------------------------------- */

static StsimModel *
new_model (const BenchConfig *bc, gboolean with_tokenizer, guint flags, guint64 seed, GError **error)
{
  StsimModelConfig c;
  stsim_model_config_init (&c, STSIM_ARCH_BERT);
  c.vocab_size = VOCAB;
  c.num_layers = bc->layers;
  c.hidden_size = bc->hidden;
  c.num_heads = bc->heads;
  c.intermediate_size = bc->ff;
  StsimTokenizer *tok = NULL;
  if (with_tokenizer && !(tok = load_tokenizer (error)))
    return NULL;
  return stsim_model_new (&c, tok, flags, seed, error);
}

typedef struct {
  const BenchConfig *bc;
  StsimTokenizer *tok;         /* the student's (borrowed) */
  StsimModel *student;         /* encode */
  /* simcse, paper: the shipped training step on a recipe's components */
  StsimRegistry *reg;
  StsimRecipe *recipe;
  StsimContext *ctx;
  StsimEngine *engine;
  char *tmp;                   /* random checkpoints of the bench's size */
  /* per-step figures */
  double flops;
  gint64 tokens;
} Cell;

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
    g_rmdir (path);
  } else
    g_unlink (path);
}

static void
cell_clear (Cell *c)
{
  g_clear_pointer (&c->engine, stsim_engine_free);
  g_clear_pointer (&c->ctx, stsim_context_free);
  g_clear_pointer (&c->recipe, stsim_recipe_free);
  g_clear_pointer (&c->reg, stsim_registry_free);
  g_clear_pointer (&c->student, stsim_model_free);
  if (c->tmp)
    remove_tree (c->tmp);
  g_clear_pointer (&c->tmp, g_free);
}

/* A random checkpoint of the bench's size in @c->tmp/@name (the weights do
 * not change the cost of a step). */
static char *
write_checkpoint (Cell *c, const char *name, guint flags, guint64 seed, GError **error)
{
  g_autoptr(StsimModel) m = new_model (c->bc, TRUE, flags, seed, error);
  g_autofree char *vocab = g_build_filename (data_dir (), "vocab", "bert-base-uncased", NULL);
  char *dir = g_build_filename (c->tmp, name, NULL);
  if (!m || !stsim_model_set_tokenizer_dir (m, vocab, error) || !stsim_model_save (m, dir, error)) {
    g_prefix_error (error, "writing the bench's %s checkpoint: ", name);
    g_free (dir);
    return NULL;
  }
  return dir;
}

/* The workload's recipe (recipes/simcse-bert-base.ini, recipes/paper.ini)
 * with the bench's batch, length and seed, and random checkpoints of the
 * bench's size for every model it loads. paper keeps one teacher (as the
 * PyTorch reference does); its generator is a BERT with an MLM head. */
static gboolean
cell_setup_engine (Cell *c, int workload, int B, int steps, GError **error)
{
  c->tmp = g_dir_make_tmp ("stsim-bench-XXXXXX", error);
  if (!c->tmp)
    return FALSE;
  guint64 seed = (guint64) opt_seed;
  g_autofree char *student = write_checkpoint (c, "student", STSIM_MODEL_POOLER, seed, error);
  g_autofree char *teacher = student && workload == 2 ? write_checkpoint (c, "teacher", 0, seed + 1, error) : NULL;
  g_autofree char *gen = teacher ? write_checkpoint (c, "generator", STSIM_MODEL_MLM_HEAD, seed + 2, error) : NULL;
  if (!student || (workload == 2 && !gen))
    return FALSE;
  GPtrArray *o = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (o, g_strdup_printf ("run.seed=%" G_GINT64_FORMAT, opt_seed));
  g_ptr_array_add (o, g_strdup_printf ("run.output=%s/run", c->tmp));
  g_ptr_array_add (o, g_strdup_printf ("train.batch_size=%d", B));
  g_ptr_array_add (o, g_strdup_printf ("train.max_len=%d", opt_max_len));
  g_ptr_array_add (o, g_strdup_printf ("train.steps=%d", steps));
  g_ptr_array_add (o, g_strdup_printf ("encoder.model=%s", student));
  if (workload == 2) {
    g_ptr_array_add (o, g_strdup_printf ("teacher.a.model=%s", teacher));
    g_ptr_array_add (o, g_strdup ("teacher.a.cache=false"));
    g_ptr_array_add (o, g_strdup ("teacher.b.enabled=false"));
    g_ptr_array_add (o, g_strdup ("objective.rank.teachers=teacher.a"));
    g_ptr_array_add (o, g_strdup ("objective.rank.teacher_weights=1"));
    g_ptr_array_add (o, g_strdup_printf ("objective.diff.generator=%s", gen));
  }
  g_ptr_array_add (o, NULL);
  g_autoptr(GPtrArray) overrides = o;
  g_autofree char *recipe = g_build_filename (STSIM_SOURCE_DIR, "recipes",
                                              workload == 1 ? "simcse-bert-base.ini" : "paper.ini", NULL);
  c->reg = tool_registry_new (NULL);
  if (!(c->recipe = stsim_recipe_load (c->reg, recipe, (const char *const *) overrides->pdata, opt_data, error)))
    return FALSE;
  c->ctx = stsim_recipe_new_context (c->recipe);
  if (!stsim_recipe_instantiate (c->recipe, c->ctx, error) ||
      !(c->engine = stsim_engine_new (c->recipe, c->ctx, error)))
    return FALSE;
  c->tok = stsim_model_get_tokenizer (stsim_engine_get_model (c->engine));
  return TRUE;
}

static gboolean
cell_setup (Cell *c, int workload, int B, int steps, GError **error)
{
  if (workload != 0)
    return cell_setup_engine (c, workload, B, steps, error);
  /* encode: an inference model, with no gradient block (PyTorch allocates
   * none before a backward either). */
  if (!(c->student = new_model (c->bc, TRUE, STSIM_MODEL_FROZEN, (guint64) opt_seed, error)))
    return FALSE;
  c->tok = stsim_model_get_tokenizer (c->student);
  return TRUE;
}

static void
count_rows (const StsimTokenBatch *tb, gint32 *rows, gint32 *keys, gboolean padded)
{
  for (gsize r = 0; r < tb->n; r++) {
    keys[r] = tb->lengths[r];
    rows[r] = padded ? (gint32) tb->width : tb->lengths[r];
  }
}

static gboolean
step_encode (Cell *c, char **texts, int B, GError **error)
{
  g_autofree float *out = g_new (float, (gsize) B * c->bc->hidden);
  return stsim_model_encode (c->student, (const char *const *) texts, B, STSIM_POOL_CLS_BEFORE_POOLER, opt_max_len,
                             out, error);
}

/* One step of the trainer's engine on the 2B rows (tokenization included). */
static gboolean
step_train (Cell *c, const char **rowtexts, int B, guint64 step, GError **error)
{
  StsimEngineResult r;
  if (!stsim_engine_step (c->engine, rowtexts, B, step, &r, error))
    return FALSE;
  if (r.skipped) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC, "step %" G_GUINT64_FORMAT ": non-finite loss %g", step,
                 r.loss);
    return FALSE;
  }
  return TRUE;
}

/* Work of one step (FLOPs) and the real tokens the student sees. */
static void
step_work (Cell *c, int workload, const StsimTokenBatch *tb, int B)
{
  const BenchConfig *bc = c->bc;
  gsize n = tb->n;
  g_autofree gint32 *rows = g_new (gint32, n), *keys = g_new (gint32, n);
  count_rows (tb, rows, keys, FALSE);
  double H = bc->hidden, V = VOCAB;
  gint64 tok = 0;
  for (gsize r = 0; r < n; r++)
    tok += tb->lengths[r];
  if (workload == 0) {
    c->flops = encoder_flops (bc, rows, keys, B);   /* the first B rows are the B sentences */
    c->tokens = 0;
    for (int r = 0; r < B; r++)
      c->tokens += tb->lengths[r];
    return;
  }
  double student = encoder_flops (bc, rows, keys, n);
  c->tokens = tok;
  if (workload == 1) {
    c->flops = 3 * (student + 2.0 * n * H * H);
    return;
  }
  double teacher = encoder_flops (bc, rows, keys, n / 2);
  double gen = student + 2.0 * (tok - (gint64) n) * (H * H + H * V);
  count_rows (tb, rows, keys, TRUE);
  double disc = encoder_flops (bc, rows, keys, n) + 2.0 * n * tb->width * H * 2;
  double heads = 2.0 * n * (2 * H * H * 2);
  c->flops = 3 * (student + disc + heads) + teacher + gen;
}

static void
print_profile_json (JsonBuilder *b, double total)
{
  StsimProfEntry e[N_PROFILE];
  gsize ne = MIN (stsim_profile_get (e, N_PROFILE), N_PROFILE);
  json_builder_set_member_name (b, "profile");
  json_builder_begin_array (b);
  for (gsize i = 0; i < ne; i++) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, e[i].name);
    json_builder_set_member_name (b, "seconds");
    json_builder_add_double_value (b, e[i].seconds);
    json_builder_set_member_name (b, "share");
    json_builder_add_double_value (b, total > 0 ? e[i].seconds / total : 0);
    json_builder_set_member_name (b, "gflops");
    json_builder_add_double_value (b, e[i].seconds > 0 ? e[i].flops / e[i].seconds / 1e9 : 0);
    json_builder_set_member_name (b, "flops");
    json_builder_add_double_value (b, e[i].flops);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

/* Raw cblas_sgemm GFLOP/s at the dense-layer shapes of a step over @N token
 * rows (forward NT, backward NN and TN), for the GEMM-efficiency figure. */
static double
raw_gemm_gflops (const BenchConfig *bc, gint64 N, gboolean backward)
{
  gint64 H = bc->hidden, FF = bc->ff;
  gint64 shapes[4][2] = { { 3 * H, H }, { H, H }, { FF, H }, { H, FF } };   /* [out, in] */
  gint64 maxo = MAX (3 * H, FF), maxi = MAX (H, FF);
  float *x = g_new0 (float, N * maxi), *w = g_new0 (float, maxo * maxi), *y = g_new0 (float, N * maxo);
  for (gint64 i = 0; i < N * maxi; i++)
    x[i] = (float) ((i % 7) - 3) * 0.01f;
  for (gint64 i = 0; i < maxo * maxi; i++)
    w[i] = (float) ((i % 5) - 2) * 0.01f;
  double flops = 0, secs = 0;
  for (int rep = 0; rep < 4; rep++)
    for (int s = 0; s < 4; s++) {
      int O = (int) shapes[s][0], In = (int) shapes[s][1];
      double t0 = now ();
      if (!backward) {
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) N, O, In, 1.0f, x, In, w, In, 0.0f, y, O);
      } else {
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) N, In, O, 1.0f, y, O, w, In, 0.0f, x, In);
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, O, In, (int) N, 1.0f, y, O, x, In, 1.0f, w, In);
      }
      double t = now () - t0;
      if (rep > 0) {   /* the first round warms caches and thread pools */
        secs += t;
        flops += (backward ? 4.0 : 2.0) * N * O * In;
      }
    }
  g_free (x);
  g_free (w);
  g_free (y);
  return flops / secs / 1e9;
}

/* One cell in this process: prints one JSON object on stdout. */
static int
run_cell (void)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) parts = g_strsplit (opt_cell, ":", -1);
  const BenchConfig *bc = g_strv_length (parts) == 3 ? find_config (parts[0]) : NULL;
  int workload = bc ? find_name (workload_names, G_N_ELEMENTS (workload_names), parts[1]) : -1;
  int threads = bc ? atoi (parts[2]) : 0;
  if (!bc || workload < 0 || threads < 1 || !opt_batches_file)
    return tool_usage_error ("--cell wants CONFIG:WORKLOAD:THREADS and --batches-file, got '%s'", opt_cell);
  stsim_set_threads (threads);
  g_autoptr(BatchSet) set = read_batch_file (opt_batches_file, &error);
  if (!set) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  int need = opt_warmup + opt_steps;
  if (set->n_steps < need) {
    g_printerr ("stsim-bench: %s has %d batches, the cell needs %d\n", opt_batches_file, set->n_steps, need);
    return STSIM_EXIT_INVALID;
  }
  Cell c = { .bc = bc };
  int B = set->B;
  if (!cell_setup (&c, workload, B, need, &error)) {
    tool_print_error (error);
    cell_clear (&c);
    return STSIM_EXIT_INVALID;
  }
  g_autofree double *times = g_new0 (double, need);
  double flops = 0, tokens = 0;
  gsize arena_peak = 0;
  for (int s = 0; s < need && !error; s++) {
    /* Rows of the step, view-major: both views are the same B sentences. */
    g_autofree const char **rowtexts = g_new (const char *, 2 * B);
    for (int i = 0; i < 2 * B; i++)
      rowtexts[i] = set->texts[s][i % B];
    StsimTokenBatch tb = { 0 };
    if (!stsim_tokenizer_encode_batch (c.tok, rowtexts, workload == 0 ? B : 2 * B, opt_max_len, &tb, &error))
      break;
    if (s == opt_warmup && opt_profile) {
      stsim_profile_reset ();
      stsim_profile_set_enabled (TRUE);
    }
    double t0 = now ();
    gboolean ok = workload == 0 ? step_encode (&c, set->texts[s], B, &error)
                : step_train (&c, rowtexts, B, (guint64) s, &error);
    times[s] = now () - t0;
    if (ok && s >= opt_warmup) {
      step_work (&c, workload, &tb, B);
      flops += c.flops;
      tokens += (double) c.tokens;
    }
    stsim_token_batch_clear (&tb);
  }
  stsim_profile_set_enabled (FALSE);
  if (c.engine)
    arena_peak = stsim_arena_get_high_water (stsim_tape_get_arena (stsim_engine_get_tape (c.engine)));
  if (error) {
    tool_print_error (error);
    cell_clear (&c);
    return STSIM_EXIT_INVALID;
  }
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  double med = median (times + opt_warmup, opt_steps);

  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "impl");
  json_builder_add_string_value (b, "stsim");
  json_builder_set_member_name (b, "times");
  json_builder_begin_array (b);
  for (int s = opt_warmup; s < need; s++)
    json_builder_add_double_value (b, times[s]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "median");
  json_builder_add_double_value (b, med);
  json_builder_set_member_name (b, "flops_per_step");
  json_builder_add_double_value (b, flops / opt_steps);
  json_builder_set_member_name (b, "tokens_per_step");
  json_builder_add_double_value (b, tokens / opt_steps);
  json_builder_set_member_name (b, "peak_rss_kb");
  json_builder_add_int_value (b, ru.ru_maxrss);
  json_builder_set_member_name (b, "arena_high_water");
  json_builder_add_int_value (b, (gint64) arena_peak);
  if (opt_profile) {
    double total = 0;
    for (int s = opt_warmup; s < need; s++)
      total += times[s];
    json_builder_set_member_name (b, "profiled_seconds");
    json_builder_add_double_value (b, total);
    print_profile_json (b, total);
    /* GEMM efficiency: raw sgemm at the same shapes (student rows of a step). */
    gint64 N = (gint64) llround (tokens / opt_steps);
    json_builder_set_member_name (b, "raw_gemm_gflops_fwd");
    json_builder_add_double_value (b, raw_gemm_gflops (bc, N, FALSE));
    json_builder_set_member_name (b, "raw_gemm_gflops_bwd");
    json_builder_add_double_value (b, workload ? raw_gemm_gflops (bc, N, TRUE) : 0.0);
  }
  json_builder_end_object (b);
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = stsim_json_to_data (root, FALSE, NULL);
  printf ("%s\n", text);
  cell_clear (&c);
  return STSIM_EXIT_OK;
}

/* ---- the driver ----------------------------------------------------------------- */

typedef struct {
  const BenchConfig *bc;
  int workload, kind, threads;
  JsonObject *res[2];   /* stsim, torch (or NULL) */
} Result;

static JsonObject *
run_child (char **argv, char **envp, GError **error)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  if (!g_spawn_sync (NULL, argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, error))
    return NULL;
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "%s failed (status %d): %s", argv[0], status,
                 err && *err ? err : "(no message)");
    return NULL;
  }
  if (err && *err)
    g_printerr ("%s", err);
  /* The result is the last non-empty line. */
  g_strchomp (out);
  char *line = strrchr (out, '\n');
  line = line ? line + 1 : out;
  g_autoptr(JsonParser) p = json_parser_new ();
  if (!stsim_json_load_data (p, line, -1, error) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p))) {
    g_prefix_error (error, "%s printed no JSON result: ", argv[0]);
    return NULL;
  }
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

static char *
self_path (void)
{
  char *p = g_file_read_link ("/proc/self/exe", NULL);
  return p ? p : g_strdup ("stsim-bench");
}

static double
load_average (void)
{
  g_autofree char *s = NULL;
  if (!g_file_get_contents ("/proc/loadavg", &s, NULL, NULL))
    return -1;
  return g_ascii_strtod (s, NULL);
}

static char *
cpu_model (void)
{
  g_autofree char *s = NULL;
  if (g_file_get_contents ("/proc/cpuinfo", &s, NULL, NULL)) {
    char *m = strstr (s, "model name");
    if (m && (m = strchr (m, ':'))) {
      char *e = strchr (m, '\n');
      return g_strstrip (g_strndup (m + 1, e ? (gsize) (e - m - 1) : strlen (m + 1)));
    }
  }
  return g_strdup ("unknown");
}

static const char *
stsim_wait_policy (void)
{
  return opt_wait ? opt_wait : "passive";
}

static double jd (JsonObject *o, const char *k) { return o && json_object_has_member (o, k) ? json_object_get_double_member (o, k) : NAN; }

static void
print_row (const Result *r, int B)
{
  JsonObject *s = r->res[0], *t = r->res[1];
  double ms = jd (s, "median"), mt = jd (t, "median");
  double fl = jd (s, "flops_per_step"), tok = jd (s, "tokens_per_step");
  printf ("%-5s %-6s %-9s %d | %8.3f %7.1f %8.0f %6.1f %6.0f |", r->bc->name, workload_names[r->workload],
          kind_names[r->kind], r->threads, ms, B / ms, tok / ms, fl / ms / 1e9, jd (s, "peak_rss_kb") / 1024);
  if (t)
    printf (" %8.3f %7.1f %6.1f %6.0f | %5.2fx %5.2f", mt, B / mt, fl / mt / 1e9, jd (t, "peak_rss_kb") / 1024,
            mt / ms, jd (s, "peak_rss_kb") / jd (t, "peak_rss_kb"));
  printf ("\n");
  fflush (stdout);
}

static void
print_header (gboolean torch)
{
  printf ("%-5s %-6s %-9s %s | %8s %7s %8s %6s %6s |", "cfg", "work", "batches", "T", "stsim s", "sent/s", "tok/s",
          "GF/s", "RSS MB");
  if (torch)
    printf (" %8s %7s %6s %6s | %6s %5s", "torch s", "sent/s", "GF/s", "RSS MB", "speed", "mem");
  printf ("\n");
}

static gboolean
parse_list (const char *arg, const char *def, GPtrArray *out, gboolean (*valid) (const char *), const char *what)
{
  g_auto(GStrv) v = g_strsplit (arg ? arg : def, ",", -1);
  for (char **p = v; *p; p++) {
    g_strstrip (*p);
    if (!**p)
      continue;
    if (!valid (*p)) {
      tool_usage_error ("unknown %s '%s'", what, *p);
      return FALSE;
    }
    g_ptr_array_add (out, g_strdup (*p));
  }
  if (out->len == 0) {
    tool_usage_error ("empty %s list", what);
    return FALSE;
  }
  return TRUE;
}

static gboolean valid_config (const char *s) { return find_config (s) != NULL; }
static gboolean valid_workload (const char *s) { return find_name (workload_names, 3, s) >= 0; }
static gboolean valid_kind (const char *s) { return find_name (kind_names, 2, s) >= 0; }
static gboolean valid_threads (const char *s) { char *e; long v = strtol (s, &e, 10); return !*e && v >= 1 && v <= 256; }

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- throughput of encoding and training steps");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
    "Runs every (config, workload, batch kind, threads) cell in a child process and prints median seconds per\n"
    "step over --steps steps after --warmup, sentences/s, tokens/s, GFLOP/s (see docs/performance.md) and\n"
    "peak RSS. --compare-torch runs tests/bench/torch_reference.py on the same batches, alternating.");
  g_auto(GStrv) args = g_strdupv (argv);
  if (!tool_parse_options (ctx, &args))
    return STSIM_EXIT_USAGE;
  if (opt_steps < 1 || opt_warmup < 0 || opt_batch < 2 || opt_max_len < 3 || opt_max_len > 41)
    return tool_usage_error ("need --steps >= 1, --warmup >= 0, --batch-size >= 2 and 3 <= --max-len <= 41");
  if (opt_cell)
    return run_cell ();

  g_autoptr(GPtrArray) cfgs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) works = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) kinds = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) thr = g_ptr_array_new_with_free_func (g_free);
  if (!parse_list (opt_configs, "mini,small,base", cfgs, valid_config, "config")
      || !parse_list (opt_workloads, "encode,simcse,paper", works, valid_workload, "workload")
      || !parse_list (opt_kinds, "synthetic,real", kinds, valid_kind, "batch kind")
      || !parse_list (opt_threads, "1,2", thr, valid_threads, "thread count"))
    return STSIM_EXIT_USAGE;
  g_autofree char *script = opt_torch_script ? g_strdup (opt_torch_script)
                          : g_build_filename (STSIM_SOURCE_DIR, "tests", "bench", "torch_reference.py", NULL);
  const char *python = opt_python ? opt_python : "/usr/bin/python3";
  if (opt_compare && !g_file_test (script, G_FILE_TEST_EXISTS))
    return tool_usage_error ("--compare-torch: %s does not exist (use --torch-script)", script);

  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("stsim-bench-XXXXXX", &error);
  if (!tmp) {
    tool_print_error (error);
    return STSIM_EXIT_INVALID;
  }
  char *files[2] = { NULL, NULL };
  for (guint i = 0; i < kinds->len; i++) {
    int k = find_name (kind_names, 2, kinds->pdata[i]);
    if (!files[k] && !(files[k] = make_batch_file (kind_names[k], opt_warmup + opt_steps, tmp, &error))) {
      tool_print_error (error);
      return STSIM_EXIT_INVALID;
    }
    if (opt_keep)
      g_printerr ("stsim-bench: %s batches in %s\n", kind_names[k], files[k]);
  }

  g_autofree char *self = self_path ();
  g_autofree char *cpu = cpu_model ();
  double load0 = load_average ();
  gint64 t_start = g_get_real_time ();
  printf ("stsim-bench: %s, %d cores, load %.2f; B=%d max_len=%d, median of %d steps after %d warm-up;\n"
          "OMP_WAIT_POLICY: stsim %s", cpu, g_get_num_processors (), load0, opt_batch, opt_max_len, opt_steps,
          opt_warmup, stsim_wait_policy ());
  if (opt_compare)
    printf (", PyTorch %s", opt_torch_wait ? opt_torch_wait : "passive");
  printf ("\n");
  print_header (opt_compare);

  g_autoptr(GArray) results = g_array_new (FALSE, TRUE, sizeof (Result));
  int cell_no = 0;
  for (guint ci = 0; ci < cfgs->len; ci++)
    for (guint wi = 0; wi < works->len; wi++)
      for (guint ki = 0; ki < kinds->len; ki++)
        for (guint ti = 0; ti < thr->len; ti++, cell_no++) {
          Result r = { .bc = find_config (cfgs->pdata[ci]), .workload = find_name (workload_names, 3, works->pdata[wi]),
                       .kind = find_name (kind_names, 2, kinds->pdata[ki]), .threads = atoi (thr->pdata[ti]) };
          g_autofree char *cell = g_strdup_printf ("%s:%s:%d", r.bc->name, workload_names[r.workload], r.threads);
          g_autofree char *steps = g_strdup_printf ("%d", opt_steps), *warm = g_strdup_printf ("%d", opt_warmup);
          g_autofree char *seed = g_strdup_printf ("%" G_GINT64_FORMAT, opt_seed);
          g_autofree char *maxlen = g_strdup_printf ("%d", opt_max_len), *thr_s = g_strdup_printf ("%d", r.threads);
          char *sargv[] = { self, "--cell", cell, "--batches-file", files[r.kind], "--steps", steps, "--warmup", warm,
                            "--seed", seed, "--max-len", maxlen, "--data", (char *) data_dir (),
                            opt_profile ? "--profile" : NULL, NULL };
          char *targv[] = { (char *) python, script, "--config", (char *) r.bc->name, "--workload",
                            (char *) workload_names[r.workload], "--threads", thr_s, "--batches", files[r.kind],
                            "--steps", steps, "--warmup", warm, "--seed", seed, NULL };
          g_auto(GStrv) base_env = g_environ_setenv (g_get_environ (), "OMP_NUM_THREADS", thr_s, TRUE);
          g_auto(GStrv) tenv = g_environ_setenv (g_strdupv (base_env), "OMP_WAIT_POLICY",
                                                 opt_torch_wait ? opt_torch_wait : "passive", TRUE);
          /* One OpenMP pool (OpenBLAS's OpenMP build) either way; passive waits
           * keep it from spinning against other processes on a busy machine. */
          g_auto(GStrv) senv = g_strcmp0 (stsim_wait_policy (), "default") == 0
                               ? g_environ_unsetenv (g_strdupv (base_env), "OMP_WAIT_POLICY")
                               : g_environ_setenv (g_strdupv (base_env), "OMP_WAIT_POLICY", stsim_wait_policy (), TRUE);
          /* Alternate who goes first, so neither always runs on a warmer machine. */
          int order[2] = { 0, 1 };
          if (cell_no % 2) {
            order[0] = 1;
            order[1] = 0;
          }
          for (int oi = 0; oi < 2; oi++) {
            int impl = order[oi];
            if (impl == 1 && !opt_compare)
              continue;
            r.res[impl] = run_child (impl ? targv : sargv, impl ? tenv : senv, &error);
            if (!r.res[impl]) {
              g_printerr ("stsim-bench: cell %s (%s batches), %s: %s\n", cell, kind_names[r.kind],
                          impl ? "torch" : "stsim", error->message);
              g_clear_error (&error);
            }
          }
          if (r.res[0]) {
            print_row (&r, opt_batch);
            if (opt_profile) {
              JsonArray *pa = json_object_get_array_member (r.res[0], "profile");
              double tot = jd (r.res[0], "profiled_seconds");
              for (guint i = 0; pa && i < json_array_get_length (pa); i++) {
                JsonObject *e = json_array_get_object_element (pa, i);
                double gf = jd (e, "gflops");
                printf ("      %-22s %7.3f s %5.1f%%", json_object_get_string_member (e, "name"),
                        jd (e, "seconds"), 100 * jd (e, "seconds") / tot);
                if (gf > 0)
                  printf ("  %6.1f GFLOP/s", gf);
                printf ("\n");
              }
              printf ("      raw sgemm at these shapes: fwd %.1f GFLOP/s, bwd %.1f GFLOP/s\n",
                      jd (r.res[0], "raw_gemm_gflops_fwd"), jd (r.res[0], "raw_gemm_gflops_bwd"));
            }
          }
          g_array_append_val (results, r);
        }
  double load1 = load_average ();

  /* Thread scaling: the highest thread count over 1 thread. */
  printf ("\nthread scaling (time at 1 thread / time at N threads):\n");
  for (guint i = 0; i < results->len; i++) {
    Result *a = &g_array_index (results, Result, i);
    if (a->threads == 1)
      continue;
    for (guint j = 0; j < results->len; j++) {
      Result *o = &g_array_index (results, Result, j);
      if (o->threads == 1 && o->bc == a->bc && o->workload == a->workload && o->kind == a->kind && o->res[0] && a->res[0]) {
        printf ("  %-5s %-6s %-9s %d threads: stsim %.2fx", a->bc->name, workload_names[a->workload],
                kind_names[a->kind], a->threads, jd (o->res[0], "median") / jd (a->res[0], "median"));
        if (o->res[1] && a->res[1])
          printf (", torch %.2fx", jd (o->res[1], "median") / jd (a->res[1], "median"));
        printf ("\n");
      }
    }
  }
  printf ("load average: %.2f at the start, %.2f at the end\n", load0, load1);

  int rc = STSIM_EXIT_OK;
  if (opt_json) {
    g_autoptr(JsonBuilder) b = json_builder_new ();
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "machine");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "cpu");
    json_builder_add_string_value (b, cpu);
    json_builder_set_member_name (b, "cores");
    json_builder_add_int_value (b, g_get_num_processors ());
    json_builder_set_member_name (b, "load_start");
    json_builder_add_double_value (b, load0);
    json_builder_set_member_name (b, "load_end");
    json_builder_add_double_value (b, load1);
    json_builder_set_member_name (b, "started_unix");
    json_builder_add_int_value (b, t_start / G_USEC_PER_SEC);
    json_builder_end_object (b);
    json_builder_set_member_name (b, "settings");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "batch");
    json_builder_add_int_value (b, opt_batch);
    json_builder_set_member_name (b, "max_len");
    json_builder_add_int_value (b, opt_max_len);
    json_builder_set_member_name (b, "steps");
    json_builder_add_int_value (b, opt_steps);
    json_builder_set_member_name (b, "warmup");
    json_builder_add_int_value (b, opt_warmup);
    json_builder_set_member_name (b, "torch_omp_wait_policy");
    json_builder_add_string_value (b, opt_compare ? (opt_torch_wait ? opt_torch_wait : "passive") : "");
    json_builder_end_object (b);
    json_builder_set_member_name (b, "cells");
    json_builder_begin_array (b);
    for (guint i = 0; i < results->len; i++) {
      Result *r = &g_array_index (results, Result, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "config");
      json_builder_add_string_value (b, r->bc->name);
      json_builder_set_member_name (b, "workload");
      json_builder_add_string_value (b, workload_names[r->workload]);
      json_builder_set_member_name (b, "batches");
      json_builder_add_string_value (b, kind_names[r->kind]);
      json_builder_set_member_name (b, "threads");
      json_builder_add_int_value (b, r->threads);
      for (int impl = 0; impl < 2; impl++) {
        if (!r->res[impl])
          continue;
        JsonObject *o = r->res[impl];
        double med = jd (o, "median"), fl = jd (r->res[0], "flops_per_step"), tok = jd (r->res[0], "tokens_per_step");
        json_object_set_double_member (o, "sentences_per_s", opt_batch / med);
        if (!isnan (fl)) {
          json_object_set_double_member (o, "tokens_per_s", tok / med);
          json_object_set_double_member (o, "gflops", fl / med / 1e9);
        }
        json_builder_set_member_name (b, impl ? "torch" : "stsim");
        JsonNode *node = json_node_new (JSON_NODE_OBJECT);
        json_node_set_object (node, o);
        json_builder_add_value (b, node);
      }
      if (r->res[0] && r->res[1]) {
        json_builder_set_member_name (b, "speedup");
        json_builder_add_double_value (b, jd (r->res[1], "median") / jd (r->res[0], "median"));
      }
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
    g_autoptr(JsonNode) root = json_builder_get_root (b);
    if (!tool_write_json (opt_json, root, &error)) {
      tool_print_error (error);
      rc = STSIM_EXIT_INVALID;
    }
  }
  for (guint i = 0; i < results->len; i++)
    for (int impl = 0; impl < 2; impl++)
      if (g_array_index (results, Result, i).res[impl])
        json_object_unref (g_array_index (results, Result, i).res[impl]);
  if (!opt_keep) {
    for (int k = 0; k < 2; k++)
      if (files[k])
        g_remove (files[k]);
    g_rmdir (tmp);
  }
  g_free (files[0]);
  g_free (files[1]);
  return rc;
}
