/* test-model-io.c: checkpoints in and out (save -> load bit-identical, the
 * HF layout written, atomic replacement), corrupt or mismatched checkpoints
 * (precise errors), fresh initialisation, copies, stsim_model_encode
 * against the forward pass, and DiffCSE's row0 conditioning. */
#include "model-test-util.h"

/* ---- helpers ------------------------------------------------------------ */

typedef enum { EDIT_NONE, EDIT_DROP, EDIT_RESHAPE, EDIT_NAN, EDIT_ADD_COPY, EDIT_ADD_SCALED } EditKind;

typedef struct {
  EditKind    kind;
  const char *name;     /* tensor edited */
  const char *source;   /* EDIT_ADD_*: the tensor whose values the new one gets */
} Edit;

/* A copy of fixture @fixture in @dst with the weights edited as @edit says. */
static void
write_variant (const char *fixture, const char *dst, const Edit *edit)
{
  g_autofree char *src = fixture_dir (fixture);
  copy_dir (src, dst);
  g_autofree char *path = g_build_filename (dst, "model.safetensors", NULL);
  g_autofree char *ref = g_build_filename (dst, "reference.safetensors", NULL);
  g_unlink (ref);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(StsimSafetensorsWriter) w = stsim_safetensors_writer_new ();
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  gsize n;
  const char *const *names = stsim_safetensors_list (st, &n);
  for (gsize i = 0; i < n; i++) {
    const StsimTensorInfo *info = stsim_safetensors_get_info (st, names[i]);
    float *x = g_new (float, info->n_elements);
    g_ptr_array_add (keep, x);
    stsim_safetensors_read_f32 (st, names[i], info->shape, info->n_dims, x, &error);
    g_assert_no_error (error);
    gint64 shape[8];
    memcpy (shape, info->shape, sizeof shape);
    guint nd = info->n_dims;
    if (g_strcmp0 (edit->name, names[i]) == 0) {
      if (edit->kind == EDIT_DROP)
        continue;
      if (edit->kind == EDIT_RESHAPE) {  /* [a, b] -> [b, a]: same bytes, wrong shape */
        gint64 t = shape[0];
        shape[0] = shape[1];
        shape[1] = t;
      }
      if (edit->kind == EDIT_NAN)
        x[info->n_elements / 2] = NAN;
    }
    stsim_safetensors_writer_add_f32 (w, names[i], shape, nd, x, &error);
    g_assert_no_error (error);
    if ((edit->kind == EDIT_ADD_COPY || edit->kind == EDIT_ADD_SCALED) && g_strcmp0 (edit->source, names[i]) == 0) {
      float *y = g_new (float, info->n_elements);
      g_ptr_array_add (keep, y);
      for (guint64 k = 0; k < info->n_elements; k++)
        y[k] = edit->kind == EDIT_ADD_COPY ? x[k] : 0.5f * x[k];
      stsim_safetensors_writer_add_f32 (w, edit->name, shape, nd, y, &error);
      g_assert_no_error (error);
    }
  }
  stsim_safetensors_writer_write (w, path, &error);
  g_assert_no_error (error);
}

static void
write_config (const char *dir, const char *json)
{
  g_autofree char *path = g_build_filename (dir, "config.json", NULL);
  g_autoptr(GError) error = NULL;
  g_file_set_contents (path, json, -1, &error);
  g_assert_no_error (error);
}

/* Eval forward of the fixture batch; returns the last hidden state (copy). */
static float *
forward_last (StsimModel *m, const StsimTokenBatch *batch, gboolean packed, gint64 *numel)
{
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  stsim_tape_set_training (tape, FALSE);
  stsim_tape_set_grad_enabled (tape, FALSE);
  StsimModelOutput out;
  StsimForwardOptions opt = { .packed = packed };
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_model_forward (m, tape, batch, &opt, &out, &error));
  g_assert_no_error (error);
  StsimTensor *h = out.hidden[out.n_layers];
  *numel = h->numel;
  return g_memdup2 (h->data, (gsize) h->numel * sizeof (float));
}

static StsimModel *
load_fixture (const char *name, guint flags)
{
  g_autofree char *dir = fixture_dir (name);
  g_autoptr(GError) error = NULL;
  StsimModel *m = stsim_model_load (dir, flags, 11, &error);
  g_assert_no_error (error);
  return m;
}

static void
assert_stores_identical (StsimModel *a, StsimModel *b)
{
  StsimParamStore *sa = stsim_model_get_params (a), *sb = stsim_model_get_params (b);
  g_assert_cmpuint (stsim_param_store_get_n_views (sa), ==, stsim_param_store_get_n_views (sb));
  for (gsize i = 0; i < stsim_param_store_get_n_views (sa); i++) {
    const StsimParamView *va = stsim_param_store_get_view (sa, i);
    const StsimParamView *vb = stsim_param_store_lookup (sb, va->name);
    if (vb == NULL)
      g_error ("tensor %s lost", va->name);
    g_assert_cmpint (va->numel, ==, vb->numel);
    if (memcmp (va->tensor->data, vb->tensor->data, (gsize) va->numel * sizeof (float)) != 0)
      g_error ("tensor %s differs after the round trip", va->name);
  }
}

/* ---- save / load -------------------------------------------------------- */

typedef struct {
  const char *fixture;
  guint       flags;
  const char *must_have[6];   /* names in the saved model.safetensors */
  const char *tokenizer_files[3];
} RoundTrip;

static const RoundTrip round_trips[] = {
  { "bert-tiny", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD,
    { "bert.embeddings.word_embeddings.weight", "bert.encoder.layer.2.attention.self.value.bias",
      "bert.pooler.dense.weight", "cls.predictions.transform.LayerNorm.weight", "cls.predictions.bias", NULL },
    { "vocab.txt", NULL } },
  { "roberta-tiny", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD,
    { "roberta.embeddings.token_type_embeddings.weight", "roberta.pooler.dense.bias", "lm_head.dense.weight",
      "lm_head.layer_norm.bias", "lm_head.bias", NULL },
    { "vocab.json", "merges.txt", NULL } },
  { "distilbert-tiny", STSIM_MODEL_MLM_HEAD,
    { "distilbert.transformer.layer.1.attention.q_lin.weight", "distilbert.transformer.layer.0.ffn.lin2.bias",
      "vocab_transform.weight", "vocab_layer_norm.weight", "vocab_projector.bias", NULL },
    { "vocab.txt", NULL } },
  /* Legacy names in (no prefix, gamma/beta), HF names out. */
  { "bert-tiny-legacy", STSIM_MODEL_POOLER,
    { "bert.embeddings.LayerNorm.weight", "bert.encoder.layer.0.output.LayerNorm.bias",
      "bert.pooler.dense.bias", NULL },
    { "vocab.txt", NULL } },
};

static void
test_round_trip (gconstpointer data)
{
  const RoundTrip *rt = data;
  g_autoptr(StsimModel) a = load_fixture (rt->fixture, rt->flags | STSIM_MODEL_FROZEN);
  g_autofree char *tmp = make_tmp_dir ();
  g_autofree char *out = g_build_filename (tmp, "saved", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_model_save (a, out, &error));
  g_assert_no_error (error);

  /* The layout HF's *ForMaskedLM save_pretrained writes. */
  g_autofree char *st_path = g_build_filename (out, "model.safetensors", NULL);
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (st_path, &error);
  g_assert_no_error (error);
  for (const char *const *n = rt->must_have; *n; n++)
    if (stsim_safetensors_get_info (st, *n) == NULL)
      g_error ("saved file lacks %s", *n);
  gsize n_tensors;
  const char *const *names = stsim_safetensors_list (st, &n_tensors);
  g_assert_cmpuint (n_tensors, ==, stsim_param_store_get_n_views (stsim_model_get_params (a)));
  for (gsize i = 0; i < n_tensors; i++) {
    g_assert_false (g_str_has_suffix (names[i], "decoder.weight"));  /* tied: one copy only */
    g_assert_false (g_str_has_suffix (names[i], "gamma") || g_str_has_suffix (names[i], "beta"));
    g_assert_cmpint (stsim_safetensors_get_info (st, names[i])->dtype, ==, STSIM_DTYPE_F32);
  }
  g_assert_cmpstr (stsim_safetensors_get_metadata (st, "format"), ==, "pt");
  /* Tokenizer files copied byte for byte, a tokenizer_config.json added. */
  g_autofree char *src = fixture_dir (rt->fixture);
  for (const char *const *f = rt->tokenizer_files; *f; f++) {
    g_autofree char *p1 = g_build_filename (src, *f, NULL);
    g_autofree char *p2 = g_build_filename (out, *f, NULL);
    g_autofree char *c1 = NULL, *c2 = NULL;
    gsize l1, l2;
    g_assert_true (g_file_get_contents (p1, &c1, &l1, NULL));
    g_assert_true (g_file_get_contents (p2, &c2, &l2, NULL));
    g_assert_cmpmem (c1, l1, c2, l2);
  }
  g_autofree char *tc = g_build_filename (out, "tokenizer_config.json", NULL);
  g_assert_true (g_file_test (tc, G_FILE_TEST_IS_REGULAR));
  /* The config reads back to the same values. */
  g_autofree char *cfg_path = g_build_filename (out, "config.json", NULL);
  StsimModelConfig cfg;
  g_assert_true (stsim_model_config_load (cfg_path, &cfg, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (&cfg, sizeof cfg, stsim_model_get_config (a), sizeof cfg);

  /* Bit-identical tensors and outputs. */
  g_autoptr(StsimModel) b = stsim_model_load (out, rt->flags | STSIM_MODEL_FROZEN, 99, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stsim_model_get_initialized (b), ==, 0);
  assert_stores_identical (a, b);
  g_autoptr(StsimSafetensors) ref = open_reference (rt->fixture);
  StsimTokenBatch batch;
  ref_batch (ref, &batch);
  gint64 na, nb;
  g_autofree float *ha = forward_last (a, &batch, FALSE, &na);
  g_autofree float *hb = forward_last (b, &batch, FALSE, &nb);
  g_assert_cmpmem (ha, na * sizeof (float), hb, nb * sizeof (float));
  batch_free (&batch);
  /* No temporary folder is left beside the target. */
  GDir *d = g_dir_open (tmp, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    g_assert_cmpstr (name, ==, "saved");
  g_dir_close (d);
  rm_tree (tmp);
  /* STSIM_SAVE_DIR keeps a copy for tests/reference/check_saved_model.py
   * (loading stsim's output in the PyTorch reference). */
  const char *keep = g_getenv ("STSIM_SAVE_DIR");
  if (keep && keep[0]) {
    g_autofree char *target = g_build_filename (keep, rt->fixture, NULL);
    g_assert_true (stsim_model_save (a, target, &error));
    g_assert_no_error (error);
  }
}

/* Saving over an existing model replaces it as a whole: other files the
 * folder holds survive, stale weight files do not, nothing is left over. */
static void
test_save_replace (void)
{
  g_autoptr(StsimModel) bert = load_fixture ("bert-tiny", STSIM_MODEL_FROZEN);
  g_autoptr(StsimModel) distil = load_fixture ("distilbert-tiny", STSIM_MODEL_FROZEN);
  g_autofree char *tmp = make_tmp_dir ();
  g_autofree char *out = g_build_filename (tmp, "model", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_model_save (distil, out, &error));
  g_assert_no_error (error);
  g_autofree char *notes = g_build_filename (out, "notes.txt", NULL);
  g_autofree char *stale = g_build_filename (out, "pytorch_model.bin", NULL);
  g_assert_true (g_file_set_contents (notes, "keep me", -1, NULL));
  g_assert_true (g_file_set_contents (stale, "old weights", -1, NULL));

  g_assert_true (stsim_model_save (bert, out, &error));
  g_assert_no_error (error);
  g_autofree char *kept = NULL;
  g_assert_true (g_file_get_contents (notes, &kept, NULL, NULL));
  g_assert_cmpstr (kept, ==, "keep me");
  g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
  g_autoptr(StsimModel) back = stsim_model_load (out, STSIM_MODEL_FROZEN, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stsim_model_get_config (back)->arch, ==, STSIM_ARCH_BERT);
  assert_stores_identical (bert, back);
  GDir *d = g_dir_open (tmp, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    g_assert_cmpstr (name, ==, "model");
  g_dir_close (d);

  /* A target that is a file is refused and left alone. */
  g_autofree char *file = g_build_filename (tmp, "a-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_assert_false (stsim_model_save (bert, file, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_IO);
  g_assert_true (g_file_test (file, G_FILE_TEST_IS_REGULAR));
  rm_tree (tmp);
}

/* ---- corrupt and mismatched checkpoints ---------------------------------- */

typedef struct {
  const char *path;
  Edit        edit;
  const char *config;       /* replaces config.json when set */
  guint       flags;
  int         code;
  const char *needles[5];   /* substrings the message must contain (NULL-terminated) */
} BadCase;

static const char bert_config_no_hidden[] =
  "{\"model_type\": \"bert\", \"vocab_size\": 512, \"num_hidden_layers\": 3, \"num_attention_heads\": 4,"
  " \"intermediate_size\": 128, \"max_position_embeddings\": 64}";
static const char bert_config_relu[] =
  "{\"model_type\": \"bert\", \"vocab_size\": 512, \"hidden_size\": 64, \"num_hidden_layers\": 3,"
  " \"num_attention_heads\": 4, \"intermediate_size\": 128, \"max_position_embeddings\": 64, \"hidden_act\": \"relu\"}";
static const char bert_config_2_layers[] =
  "{\"model_type\": \"bert\", \"vocab_size\": 512, \"hidden_size\": 64, \"num_hidden_layers\": 2,"
  " \"num_attention_heads\": 4, \"intermediate_size\": 128, \"max_position_embeddings\": 64}";
static const char bert_config_heads[] =
  "{\"model_type\": \"bert\", \"vocab_size\": 512, \"hidden_size\": 64, \"num_hidden_layers\": 3,"
  " \"num_attention_heads\": 5, \"intermediate_size\": 128, \"max_position_embeddings\": 64}";
static const char bert_config_string_size[] =
  "{\"model_type\": \"bert\", \"vocab_size\": 512, \"hidden_size\": \"64\", \"num_hidden_layers\": 3,"
  " \"num_attention_heads\": 4, \"intermediate_size\": 128, \"max_position_embeddings\": 64}";
static const char distil_config_sinusoidal[] =
  "{\"model_type\": \"distilbert\", \"vocab_size\": 512, \"dim\": 64, \"n_layers\": 2, \"n_heads\": 4,"
  " \"hidden_dim\": 128, \"max_position_embeddings\": 64, \"sinusoidal_pos_embds\": true}";
static const char config_gpt2[] = "{\"model_type\": \"gpt2\", \"vocab_size\": 512}";
static const char config_broken[] = "{\"model_type\": \"bert\", \"vocab_size\": 512,";

static const BadCase bad_cases[] = {
  { "/model/bad/missing-tensor", { EDIT_DROP, "bert.encoder.layer.1.output.dense.weight" }, NULL, 0,
    STSIM_ERROR_CHECKPOINT, { "model.safetensors", "bert.encoder.layer.1.output.dense.weight", "[64, 128]", "missing" } },
  { "/model/bad/wrong-shape", { EDIT_RESHAPE, "bert.encoder.layer.0.intermediate.dense.weight" }, NULL, 0,
    STSIM_ERROR_CHECKPOINT, { "bert.encoder.layer.0.intermediate.dense.weight", "[64, 128]", "expected [128, 64]",
                              "intermediate_size 128" } },
  { "/model/bad/nan", { EDIT_NAN, "bert.embeddings.LayerNorm.weight" }, NULL, 0,
    STSIM_ERROR_NUMERIC, { "bert.embeddings.LayerNorm.weight", "NaN" } },
  { "/model/bad/untied-decoder", { EDIT_ADD_SCALED, "cls.predictions.decoder.weight",
                                   "bert.embeddings.word_embeddings.weight" }, NULL, STSIM_MODEL_MLM_HEAD,
    STSIM_ERROR_CHECKPOINT, { "cls.predictions.decoder.weight", "differs from the word embeddings" } },
  { "/model/bad/missing-config-key", { EDIT_NONE }, bert_config_no_hidden, 0,
    STSIM_ERROR_NOT_FOUND, { "config.json", "\"hidden_size\"", "missing" } },
  { "/model/bad/unsupported-activation", { EDIT_NONE }, bert_config_relu, 0,
    STSIM_ERROR_UNSUPPORTED, { "config.json", "\"hidden_act\"", "relu" } },
  { "/model/bad/extra-layer", { EDIT_NONE }, bert_config_2_layers, 0,
    STSIM_ERROR_CHECKPOINT, { "bert.encoder.layer.2.", "num_hidden_layers 2" } },
  { "/model/bad/heads", { EDIT_NONE }, bert_config_heads, 0,
    STSIM_ERROR_INVALID, { "config.json", "\"hidden_size\" 64", "\"num_attention_heads\" 5" } },
  { "/model/bad/wrong-type", { EDIT_NONE }, bert_config_string_size, 0,
    STSIM_ERROR_PARSE, { "config.json", "\"hidden_size\"", "integer" } },
  { "/model/bad/sinusoidal", { EDIT_NONE }, distil_config_sinusoidal, 0,
    STSIM_ERROR_UNSUPPORTED, { "config.json", "\"sinusoidal_pos_embds\"" } },
  { "/model/bad/model-type", { EDIT_NONE }, config_gpt2, 0,
    STSIM_ERROR_UNSUPPORTED, { "config.json", "gpt2" } },
  { "/model/bad/json", { EDIT_NONE }, config_broken, 0, STSIM_ERROR_PARSE, { "config.json" } },
};

static void
test_bad (gconstpointer data)
{
  const BadCase *bc = data;
  g_autofree char *tmp = make_tmp_dir ();
  g_autofree char *dir = g_build_filename (tmp, "m", NULL);
  write_variant (bc->config == distil_config_sinusoidal ? "distilbert-tiny" : "bert-tiny", dir, &bc->edit);
  if (bc->config)
    write_config (dir, bc->config);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimModel) m = stsim_model_load (dir, bc->flags, 1, &error);
  g_assert_null (m);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", bc->path, error->message);
  g_assert_error (error, STSIM_ERROR, bc->code);
  for (const char *const *n = bc->needles; *n; n++)
    if (strstr (error->message, *n) == NULL)
      g_error ("message lacks \"%s\": %s", *n, error->message);
  rm_tree (tmp);
}

/* The same decoder weight as the embeddings is accepted (HF's .bin files
 * store both); a missing folder or weight file is a NOT_FOUND error. */
static void
test_tied_decoder_and_missing (void)
{
  g_autofree char *tmp = make_tmp_dir ();
  g_autofree char *dir = g_build_filename (tmp, "m", NULL);
  Edit e = { EDIT_ADD_COPY, "cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight" };
  write_variant ("bert-tiny", dir, &e);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimModel) m = stsim_model_load (dir, STSIM_MODEL_MLM_HEAD, 1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);

  g_autofree char *nowhere = g_build_filename (tmp, "nowhere", NULL);
  g_assert_null (stsim_model_load (nowhere, 0, 1, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_autofree char *st = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *bin = g_build_filename (dir, "pytorch_model.bin", NULL);
  g_assert_cmpint (g_rename (st, bin), ==, 0);
  g_assert_null (stsim_model_load (dir, 0, 1, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "convert it"));
  g_test_message ("%s", error->message);
  rm_tree (tmp);
}

/* ---- fresh models, initialisation, copies --------------------------------- */

static void
test_fresh_init (void)
{
  StsimModelConfig c;
  stsim_model_config_init (&c, STSIM_ARCH_BERT);
  c.vocab_size = 300;
  c.hidden_size = 128;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 256;
  c.max_position_embeddings = 40;
  c.initializer_range = 0.05;
  g_autoptr(GError) error = NULL;
  guint flags = STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD;
  g_autoptr(StsimModel) a = stsim_model_new (&c, NULL, flags, 5, &error);
  g_assert_no_error (error);
  g_autoptr(StsimModel) b = stsim_model_new (&c, NULL, flags, 5, &error);
  g_autoptr(StsimModel) other = stsim_model_new (&c, NULL, flags, 6, &error);
  g_assert_cmpuint (stsim_model_get_initialized (a), ==, flags);
  assert_stores_identical (a, b);   /* same seed, same values */

  StsimParamStore *s = stsim_model_get_params (a);
  StsimParamStore *so = stsim_model_get_params (other);
  for (gsize i = 0; i < stsim_param_store_get_n_views (s); i++) {
    const StsimParamView *v = stsim_param_store_get_view (s, i);
    const float *x = v->tensor->data;
    gboolean is_ln_weight = g_str_has_suffix (v->name, "LayerNorm.weight");
    gboolean is_bias = g_str_has_suffix (v->name, ".bias");
    if (is_ln_weight || is_bias) {
      for (gint64 k = 0; k < v->numel; k++)
        g_assert_cmpfloat (x[k], ==, is_ln_weight ? 1.0f : 0.0f);
      g_assert_true (v->flags & STSIM_VIEW_NO_DECAY);
      continue;
    }
    g_assert_false (v->flags & STSIM_VIEW_NO_DECAY);
    double sum = 0, sq = 0;
    for (gint64 k = 0; k < v->numel; k++) {
      sum += x[k];
      sq += (double) x[k] * x[k];
    }
    double mean = sum / v->numel, sd = sqrt (sq / v->numel - mean * mean);
    /* N(0, 0.05): the sample sd within 5 standard errors (sd/sqrt(2n)). */
    double se = 0.05 / sqrt (2.0 * v->numel);
    g_test_message ("%-52s n %6" G_GINT64_FORMAT " mean %+.4f sd %.4f", v->name, v->numel, mean, sd);
    g_assert_cmpfloat (fabs (sd - 0.05), <=, 5 * se + 1e-4);
    g_assert_cmpfloat (fabs (mean), <=, 5 * 0.05 / sqrt ((double) v->numel));
    /* Tensors are independent draws: no two share their first values. */
    const StsimParamView *vo = stsim_param_store_lookup (so, v->name);
    g_assert_true (memcmp (x, vo->tensor->data, (gsize) v->numel * sizeof (float)) != 0);
    if (i > 0) {
      const StsimParamView *prev = stsim_param_store_get_view (s, i - 1);
      g_assert_false (prev->numel >= 4 && memcmp (prev->tensor->data, x, 4 * sizeof (float)) == 0);
    }
  }
}

/* A pooler the file lacks is initialised from (seed, name) only: the same
 * values as a fresh model's, whatever else was loaded. RESET_POOLER does
 * that even when the file has one (SimCSE's random MLP). */
static void
test_pooler_init (void)
{
  g_autoptr(StsimModel) loaded = load_fixture ("distilbert-tiny", STSIM_MODEL_POOLER);
  g_assert_cmpuint (stsim_model_get_initialized (loaded), ==, STSIM_MODEL_POOLER);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimModel) fresh = stsim_model_new (stsim_model_get_config (loaded), NULL, STSIM_MODEL_POOLER, 11, &error);
  g_assert_no_error (error);
  const StsimParamView *a = stsim_param_store_lookup (stsim_model_get_params (loaded), "pooler.dense.weight");
  const StsimParamView *b = stsim_param_store_lookup (stsim_model_get_params (fresh), "pooler.dense.weight");
  g_assert_cmpmem (a->tensor->data, a->numel * 4, b->tensor->data, b->numel * 4);

  g_autoptr(StsimModel) kept = load_fixture ("bert-tiny", STSIM_MODEL_POOLER);
  g_autoptr(StsimModel) reset = load_fixture ("bert-tiny", STSIM_MODEL_POOLER | STSIM_MODEL_RESET_POOLER);
  g_assert_cmpuint (stsim_model_get_initialized (kept), ==, 0);
  g_assert_cmpuint (stsim_model_get_initialized (reset), ==, STSIM_MODEL_POOLER);
  const StsimParamView *k = stsim_param_store_lookup (stsim_model_get_params (kept), "pooler.dense.weight");
  const StsimParamView *r = stsim_param_store_lookup (stsim_model_get_params (reset), "pooler.dense.weight");
  g_assert_true (memcmp (k->tensor->data, r->tensor->data, (gsize) k->numel * 4) != 0);
  const StsimParamView *rb = stsim_param_store_lookup (stsim_model_get_params (reset), "pooler.dense.bias");
  for (gint64 i = 0; i < rb->numel; i++)
    g_assert_cmpfloat (rb->tensor->data[i], ==, 0.0f);
}

static void
test_copy (void)
{
  g_autoptr(StsimModel) a = load_fixture ("bert-tiny", STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD);
  g_autoptr(GError) error = NULL;
  g_autoptr(StsimModel) b = stsim_model_copy (a, STSIM_MODEL_POOLER | STSIM_MODEL_MLM_HEAD, &error);
  g_assert_no_error (error);
  assert_stores_identical (a, b);
  g_assert_nonnull (stsim_model_get_tokenizer (b));
  /* Separate storage: training the copy leaves the original alone. */
  const StsimParamView *vb = stsim_param_store_lookup (stsim_model_get_params (b), "embeddings.LayerNorm.bias");
  const StsimParamView *va = stsim_param_store_lookup (stsim_model_get_params (a), "embeddings.LayerNorm.bias");
  float before = va->tensor->data[0];
  vb->tensor->data[0] += 1.0f;
  g_assert_cmpfloat (va->tensor->data[0], ==, before);
  /* A copy without the head has no head tensors. */
  g_autoptr(StsimModel) c = stsim_model_copy (a, 0, &error);
  g_assert_no_error (error);
  g_assert_null (stsim_param_store_lookup (stsim_model_get_params (c), "cls.predictions.bias"));
  g_assert_null (stsim_param_store_lookup (stsim_model_get_params (c), "pooler.dense.weight"));
  g_assert_cmpuint (stsim_param_store_get_n_views (stsim_model_get_params (c)), ==,
                    stsim_param_store_get_n_views (stsim_model_get_params (a)) - 7);
}

/* A fresh model saves the tokenizer it was given: vocab.txt from
 * set_tokenizer_dir byte for byte, or rebuilt from the ids. */
static void
test_fresh_save (void)
{
  g_autofree char *src = fixture_dir ("bert-tiny");
  g_autofree char *cfg_path = g_build_filename (src, "config.json", NULL);
  g_autofree char *vocab = g_build_filename (src, "vocab.txt", NULL);
  StsimModelConfig c;
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_model_config_load (cfg_path, &c, &error));
  g_autofree char *tmp = make_tmp_dir ();
  for (int variant = 0; variant < 2; variant++) {
    g_autoptr(StsimModel) m = NULL;
    if (variant == 0) {
      m = stsim_model_new (&c, NULL, STSIM_MODEL_POOLER, 3, &error);
      g_assert_no_error (error);
      g_assert_true (stsim_model_set_tokenizer_dir (m, src, &error));
      g_assert_no_error (error);
    } else {
      StsimTokenizer *tok = stsim_tokenizer_new_wordpiece (vocab, TRUE, &error);
      g_assert_no_error (error);
      m = stsim_model_new (&c, tok, STSIM_MODEL_POOLER, 3, &error);
      g_assert_no_error (error);
    }
    g_autofree char *out = g_strdup_printf ("%s/fresh%d", tmp, variant);
    g_assert_true (stsim_model_save (m, out, &error));
    g_assert_no_error (error);
    g_autofree char *saved_vocab = g_build_filename (out, "vocab.txt", NULL);
    g_autofree char *c1 = NULL, *c2 = NULL;
    gsize l1, l2;
    g_assert_true (g_file_get_contents (vocab, &c1, &l1, NULL));
    g_assert_true (g_file_get_contents (saved_vocab, &c2, &l2, NULL));
    g_assert_cmpmem (c1, l1, c2, l2);
    g_autoptr(StsimModel) back = stsim_model_load (out, STSIM_MODEL_POOLER, 77, &error);
    g_assert_no_error (error);
    assert_stores_identical (m, back);
    g_assert_null (stsim_model_get_source (m));
    g_assert_cmpstr (stsim_model_get_source (back), ==, out);
    /* A copy gets a working tokenizer of its own. */
    g_autoptr(StsimModel) copy = stsim_model_copy (m, STSIM_MODEL_POOLER, &error);
    g_assert_no_error (error);
    g_assert_nonnull (stsim_model_get_tokenizer (copy));
    g_assert_cmpint (stsim_tokenizer_vocab_size (stsim_model_get_tokenizer (copy)), ==, 512);
    g_assert_true (stsim_model_get_tokenizer (copy) != stsim_model_get_tokenizer (m));
  }
  /* A tokenizer that does not fit the architecture is refused. */
  g_autoptr(StsimModel) m = stsim_model_new (&c, NULL, 0, 3, &error);
  g_autofree char *rob = fixture_dir ("roberta-tiny");
  g_assert_false (stsim_model_set_tokenizer_dir (m, rob, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT);
  g_test_message ("%s", error->message);
  rm_tree (tmp);
}

/* ---- stsim_model_encode ---------------------------------------------------- */

static const char *const sentences[] = {
  "the man is in the house.",
  "a",
  "of the and to in was he is for as on with by",
  "",
  "the man",
  "he was in the house of the man, and the man was in it.",
  "to be",
};

/* Every sentence through one padded forward pass: the reference for encode. */
static float *
encode_by_forward (StsimModel *m, StsimPooler pooler, int max_len)
{
  gsize n = G_N_ELEMENTS (sentences);
  StsimTokenBatch batch;
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_tokenizer_encode_batch (stsim_model_get_tokenizer (m), sentences, n, max_len, &batch, &error));
  g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
  stsim_tape_set_training (tape, FALSE);
  stsim_tape_set_grad_enabled (tape, FALSE);
  StsimModelOutput out;
  StsimForwardOptions opt = { .packed = FALSE };
  g_assert_true (stsim_model_forward (m, tape, &batch, &opt, &out, &error));
  g_assert_no_error (error);
  StsimTensor *p = stsim_model_pool (m, tape, &out, pooler);
  float *r = g_memdup2 (p->data, (gsize) p->numel * sizeof (float));
  stsim_token_batch_clear (&batch);
  return r;
}

/* A forward with grad off rewinds each layer's scratch: the same hidden
 * states bit for bit as a recorded forward (dropout off), with far less of
 * the arena. */
static void
test_forward_nograd_memory (void)
{
  g_autoptr(StsimModel) m = load_fixture ("bert-tiny", STSIM_MODEL_POOLER);
  const StsimModelConfig *c = stsim_model_get_config (m);
  StsimTokenBatch batch;
  g_autoptr(GError) error = NULL;
  g_assert_true (stsim_tokenizer_encode_batch (stsim_model_get_tokenizer (m), sentences, G_N_ELEMENTS (sentences), 0,
                                               &batch, &error));
  StsimModelOutput out[2];
  g_autoptr(StsimTape) grad_tape = stsim_tape_new (1, 0);
  g_autoptr(StsimTape) plain_tape = stsim_tape_new (1, 0);
  StsimTape *tapes[2] = { grad_tape, plain_tape };
  StsimForwardOptions opt = { .packed = TRUE };
  for (int k = 0; k < 2; k++) {
    stsim_tape_set_training (tapes[k], FALSE);
    stsim_tape_set_grad_enabled (tapes[k], k == 0);
    g_assert_true (stsim_model_forward (m, tapes[k], &batch, &opt, &out[k], &error));
    g_assert_no_error (error);
  }
  g_assert_cmpint (c->num_layers, >=, 2);
  gsize hidden_bytes = 0;
  for (int l = 0; l <= c->num_layers; l++) {
    gint64 n = out[0].hidden[l]->numel;
    g_assert_cmpint (out[1].hidden[l]->numel, ==, n);
    g_assert_cmpmem (out[0].hidden[l]->data, n * 4, out[1].hidden[l]->data, n * 4);
    hidden_bytes += (gsize) n * 4;
  }
  gsize hw[2] = { stsim_arena_get_high_water (stsim_tape_get_arena (grad_tape)),
                  stsim_arena_get_high_water (stsim_tape_get_arena (plain_tape)) };
  /* without grad: the hidden states and about one layer's scratch on top */
  g_assert_cmpuint (hw[1] - hidden_bytes, <, (hw[0] - hidden_bytes) * 2 / c->num_layers);
  g_test_message ("%d layers: arena high water %" G_GSIZE_FORMAT " bytes recorded, %" G_GSIZE_FORMAT
                  " without grad (hidden states %" G_GSIZE_FORMAT ")", c->num_layers, hw[0], hw[1], hidden_bytes);
  stsim_token_batch_clear (&batch);
}

static void
test_encode (gconstpointer data)
{
  const char *fixture = data;
  g_autoptr(StsimModel) m = load_fixture (fixture, STSIM_MODEL_FROZEN | STSIM_MODEL_POOLER);
  gsize n = G_N_ELEMENTS (sentences), H = stsim_model_get_dim (m);
  g_autoptr(GError) error = NULL;
  for (int p = STSIM_POOL_CLS; p <= STSIM_POOL_AVG_TOP2; p++) {
    for (int max_len = 0; max_len <= 4; max_len += 4) {
      g_autofree float *want = encode_by_forward (m, (StsimPooler) p, max_len);
      g_autofree float *got = g_new (float, n * H);
      g_autofree float *got2 = g_new (float, n * H);
      stsim_model_set_encode_batch (m, 64);
      g_assert_true (stsim_model_encode (m, sentences, n, (StsimPooler) p, max_len, got, &error));
      g_assert_no_error (error);
      /* Batches of 2: several sorted batches, same vectors in input order. */
      stsim_model_set_encode_batch (m, 2);
      g_assert_true (stsim_model_encode (m, sentences, n, (StsimPooler) p, max_len, got2, &error));
      g_assert_no_error (error);
      g_autofree char *w1 = g_strdup_printf ("%s encode %s max_len %d vs padded forward", fixture,
                                             stsim_pooler_name (p), max_len);
      g_autofree char *w2 = g_strdup_printf ("%s encode %s max_len %d batch 2 vs 64", fixture,
                                             stsim_pooler_name (p), max_len);
      double d1 = check_close (w1, got, want, n * H);
      double d2 = check_close (w2, got2, got, n * H);
      g_assert_cmpfloat (d1, <=, 1e-5);
      g_assert_cmpfloat (d2, <=, 1e-5);
    }
  }
  /* Errors name the sentence. */
  const char *bad[] = { "fine", "bad \xff byte" };
  g_autofree float *out = g_new (float, 2 * H);
  g_assert_false (stsim_model_encode (m, bad, 2, STSIM_POOL_AVG, 0, out, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_ENCODING);
  g_assert_true (g_str_has_prefix (error->message, "sentence 1:"));
  g_clear_error (&error);
  GString *longer = g_string_new (NULL);
  for (int i = 0; i < 80; i++)
    g_string_append (longer, "the ");
  const char *too_long[] = { "ok", longer->str };
  g_assert_false (stsim_model_encode (m, too_long, 2, STSIM_POOL_AVG, 0, out, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, "sentence 1:"));
  g_assert_nonnull (strstr (error->message, "max_len"));
  g_clear_error (&error);
  /* ... and truncation makes it fit. */
  g_assert_true (stsim_model_encode (m, too_long, 2, STSIM_POOL_AVG, 16, out, &error));
  g_assert_no_error (error);
  g_string_free (longer, TRUE);

  g_autoptr(StsimModel) no_pooler = load_fixture (fixture, STSIM_MODEL_FROZEN);
  g_assert_false (stsim_model_encode (no_pooler, sentences, 1, STSIM_POOL_CLS, 0, out, &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
}

/* DiffCSE conditioning: row0 replaces position 0 after the embedding
 * LayerNorm, everything else is untouched, and the gradient reaches row0
 * (checked against a central difference). */
static void
test_row0 (void)
{
  g_autoptr(StsimModel) m = load_fixture ("bert-tiny", 0);
  g_autoptr(StsimSafetensors) ref = open_reference ("bert-tiny");
  StsimTokenBatch batch;
  ref_batch (ref, &batch);
  const gint64 H = stsim_model_get_dim (m), B = batch.n;
  g_autofree float *r1 = ref_f32 (ref, "loss.R1", NULL);
  g_autofree float *z = g_new (float, B * H);
  for (gint64 i = 0; i < B * H; i++)
    z[i] = sinf (0.37f * (float) i);

  for (int packed = 0; packed <= 1; packed++) {
    g_autoptr(StsimTape) tape = stsim_tape_new (1, 0);
    stsim_tape_set_training (tape, FALSE);
    g_autoptr(GError) error = NULL;
    StsimModelOutput plain, cond;
    StsimForwardOptions o1 = { .packed = packed };
    g_assert_true (stsim_model_forward (m, tape, &batch, &o1, &plain, &error));
    StsimTensor *row0 = stsim_tensor_from_data (tape, 2, (gint64[]) { B, H }, z);
    stsim_tensor_set_requires_grad (row0, TRUE);
    StsimForwardOptions o2 = { .packed = packed, .row0 = row0 };
    g_assert_true (stsim_model_forward (m, tape, &batch, &o2, &cond, &error));
    g_assert_no_error (error);
    for (gint64 r = 0; r < cond.n_rows; r++) {
      gboolean first = FALSE;
      gint64 b = 0;
      for (gsize s = 0; s < (gsize) B; s++)
        if (cond.seqs[s].offset == r) {
          first = TRUE;
          b = (gint64) s;
        }
      const float *want = first ? z + b * H : plain.hidden[0]->data + r * H;
      g_assert_cmpmem (cond.hidden[0]->data + r * H, H * 4, want, H * 4);
    }
    if (packed)
      continue;
    /* Gradient of Σ h_N ⊙ R1 with respect to row0[1, 5]. */
    StsimTensor *last = cond.hidden[cond.n_layers];
    StsimTensor *loss = stsim_sum (tape, stsim_mul (tape, last, stsim_tensor_from_data (tape, 2, last->shape, r1)));
    g_assert_true (stsim_tape_backward (tape, loss, NULL, &error));
    g_assert_no_error (error);
    g_assert_nonnull (row0->grad);
    float analytic = row0->grad[1 * H + 5];
    double f[2];
    for (int side = 0; side < 2; side++) {
      g_autoptr(StsimTape) t2 = stsim_tape_new (1, 0);
      stsim_tape_set_training (t2, FALSE);
      stsim_tape_set_grad_enabled (t2, FALSE);
      g_autofree float *zz = g_memdup2 (z, (gsize) (B * H) * 4);
      zz[1 * H + 5] += side ? -1e-2f : 1e-2f;
      StsimForwardOptions o3 = { .row0 = stsim_tensor_from_data (t2, 2, (gint64[]) { B, H }, zz) };
      StsimModelOutput o;
      g_assert_true (stsim_model_forward (m, t2, &batch, &o3, &o, &error));
      double s = 0;
      StsimTensor *h = o.hidden[o.n_layers];
      for (gint64 i = 0; i < h->numel; i++)
        s += (double) h->data[i] * r1[i];
      f[side] = s;
    }
    double fd = (f[0] - f[1]) / 2e-2;
    g_test_message ("row0 gradient: analytic %.6f, central difference %.6f", analytic, fd);
    g_assert_cmpfloat (fabs (analytic - fd), <=, 2e-3 * MAX (1.0, fabs (fd)));
    g_assert_cmpfloat (fabs (analytic), >, 1e-3);
  }
  batch_free (&batch);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (round_trips); i++) {
    g_autofree char *p = g_strdup_printf ("/model/save/round-trip/%s", round_trips[i].fixture);
    g_test_add_data_func (p, &round_trips[i], test_round_trip);
  }
  g_test_add_func ("/model/save/replace", test_save_replace);
  g_test_add_func ("/model/save/fresh", test_fresh_save);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    g_test_add_data_func (bad_cases[i].path, &bad_cases[i], test_bad);
  g_test_add_func ("/model/bad/tied-decoder-and-missing-files", test_tied_decoder_and_missing);
  g_test_add_func ("/model/init/fresh", test_fresh_init);
  g_test_add_func ("/model/init/pooler", test_pooler_init);
  g_test_add_func ("/model/copy", test_copy);
  g_test_add_data_func ("/model/encode/bert-tiny", "bert-tiny", test_encode);
  g_test_add_data_func ("/model/encode/roberta-tiny", "roberta-tiny", test_encode);
  g_test_add_func ("/model/row0", test_row0);
  g_test_add_func ("/model/forward/nograd-memory", test_forward_nograd_memory);
  return g_test_run ();
}
