/* model-io.c: Hugging Face model folders in and out (method.md §1.2-1.4).
 *
 * Reading accepts what real checkpoints contain: names with or without the
 * bert./roberta./distilbert. prefix, LayerNorm gamma/beta (the original
 * bert-base-uncased) or weight/bias, F32/F16/BF16 storage, an absent tied
 * decoder weight, extra tensors of other heads (NSP, SimCSE's mlp,
 * DiffCSE's discriminator) which are ignored. Writing produces what
 * BertForMaskedLM / RobertaForMaskedLM / DistilBertForMaskedLM
 * save_pretrained would, into a temporary sibling folder that replaces the
 * target only once complete. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>

#include "model-private.h"
#include "stsim/stsim-safetensors.h"
#include "io/bounded.h"

/* Tokenizer files kept with a model and written back on save. */
static const char *const tokenizer_file_names[] = {
  "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json",
  "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", NULL
};

static gboolean
is_tokenizer_file (const char *name)
{
  return g_strv_contains (tokenizer_file_names, name);
}

/* ---- tokenizer files -------------------------------------------------- */

static gboolean
read_tokenizer_files (GHashTable *files, const char *dir, GError **error)
{
  for (const char *const *f = tokenizer_file_names; *f; f++) {
    g_autofree char *path = g_build_filename (dir, *f, NULL);
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      continue;
    char *contents = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    if (!stsim_file_get_contents (path, STSIM_LIMIT_VOCAB, &contents, &len, &local)) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: %s", path, local->message);
      return FALSE;
    }
    g_hash_table_insert (files, g_strdup (*f), g_bytes_new_take (contents, len));
  }
  return TRUE;
}

static gboolean
has_vocab_files (GHashTable *files)
{
  return g_hash_table_contains (files, "vocab.txt")
         || (g_hash_table_contains (files, "vocab.json") && g_hash_table_contains (files, "merges.txt"));
}

/* vocab.txt rebuilt from the ids, for a WordPiece tokenizer that came
 * without files (id = line number, so this is exact). */
static GBytes *
wordpiece_vocab_from_tokenizer (StsimTokenizer *tok)
{
  GString *s = g_string_new (NULL);
  gint32 n = stsim_tokenizer_vocab_size (tok);
  for (gint32 i = 0; i < n; i++) {
    const char *t = stsim_tokenizer_id_to_token (tok, i);
    g_string_append (s, t ? t : "");
    g_string_append_c (s, '\n');
  }
  gsize len = s->len;
  return g_bytes_new_take (g_string_free (s, FALSE), len);
}

static gboolean
write_bytes (const char *dir, const char *name, GBytes *bytes, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  gsize len = 0;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autoptr(GError) local = NULL;
  if (!g_file_set_contents (path, data ? data : "", (gssize) len, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: %s", path, local->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_text (const char *dir, const char *name, const char *text, GError **error)
{
  g_autoptr(GBytes) b = g_bytes_new_static (text, strlen (text));
  return write_bytes (dir, name, b, error);
}

/* Removes @path; folders recursively (symlinks are removed, never followed). */
static void
remove_tree (const char *path)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode)) {
    GDir *d = g_dir_open (path, 0, NULL);
    if (d) {
      const char *name;
      while ((name = g_dir_read_name (d)) != NULL) {
        g_autofree char *child = g_build_filename (path, name, NULL);
        remove_tree (child);
      }
      g_dir_close (d);
    }
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

void
stsim_model_adopt_tokenizer (StsimModel *m)
{
  /* A WordPiece vocabulary is fully described by its ids: rebuild vocab.txt
   * so that save() and copy() have files. (A cased tokenizer given this way
   * comes back lowercasing: the tokenizer API does not expose the flag.) */
  if (m->tokenizer != NULL && !has_vocab_files (m->tokenizer_files)
      && stsim_tokenizer_get_kind (m->tokenizer) == STSIM_TOKENIZER_WORDPIECE)
    g_hash_table_insert (m->tokenizer_files, g_strdup ("vocab.txt"), wordpiece_vocab_from_tokenizer (m->tokenizer));
}

StsimTokenizer *
stsim_model_tokenizer_from_files (StsimModel *m, GError **error)
{
  /* The tokenizer API reads folders: write the kept files to a private one. */
  g_autoptr(GError) local = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("stsim-tok-XXXXXX", &local);
  if (tmp == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "temporary folder: %s", local->message);
    return NULL;
  }
  GHashTableIter it;
  gpointer k, v;
  StsimTokenizer *tok = NULL;
  gboolean ok = TRUE;
  g_hash_table_iter_init (&it, m->tokenizer_files);
  while (ok && g_hash_table_iter_next (&it, &k, &v))
    ok = write_bytes (tmp, k, v, error);
  if (ok)
    tok = stsim_tokenizer_new_from_dir (tmp, error);
  remove_tree (tmp);
  return tok;
}

gboolean
stsim_model_set_tokenizer_dir (StsimModel *model, const char *dir, GError **error)
{
  g_return_val_if_fail (model != NULL && dir != NULL, FALSE);
  g_autoptr(GHashTable) files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) g_bytes_unref);
  if (!read_tokenizer_files (files, dir, error))
    return FALSE;
  if (!has_vocab_files (files)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "%s: no tokenizer files (vocab.txt, or vocab.json and merges.txt)", dir);
    return FALSE;
  }
  StsimTokenizer *tok = stsim_tokenizer_new_from_dir (dir, error);
  if (tok == NULL)
    return FALSE;
  if (!stsim_model_check_tokenizer (model, tok, dir, error)) {
    stsim_tokenizer_free (tok);
    return FALSE;
  }
  stsim_tokenizer_free (model->tokenizer);
  model->tokenizer = tok;
  g_hash_table_unref (model->tokenizer_files);
  model->tokenizer_files = g_steal_pointer (&files);
  return TRUE;
}

/* ---- loading ---------------------------------------------------------- */

static void
add_candidate (GPtrArray *c, char *name)
{
  for (guint i = 0; i < c->len; i++)
    if (strcmp (c->pdata[i], name) == 0) {
      g_free (name);
      return;
    }
  g_ptr_array_add (c, name);
}

/* "x.LayerNorm.weight" -> "x.LayerNorm.gamma", "...bias" -> "...beta". */
static char *
gamma_beta (const char *name)
{
  gsize n = strlen (name);
  if (g_str_has_suffix (name, ".weight"))
    return g_strdup_printf ("%.*sgamma", (int) (n - 6), name);  /* keeps the dot */
  if (g_str_has_suffix (name, ".bias"))
    return g_strdup_printf ("%.*sbeta", (int) (n - 4), name);
  return NULL;
}

/* Every checkpoint name that may hold parameter @mp, preferred first. */
static GPtrArray *
candidates (StsimModel *m, const ModelParam *mp)
{
  GPtrArray *c = g_ptr_array_new_with_free_func (g_free);
  const char *prefix = stsim_model_arch_prefix (m->config.arch);
  if (mp->part != MODEL_PART_HEAD)
    add_candidate (c, g_strconcat (prefix, mp->name, NULL));
  add_candidate (c, g_strdup (mp->name));
  if (mp->part == MODEL_PART_POOLER) {
    /* SimCSE's unconverted checkpoints call the pooler "mlp". */
    add_candidate (c, g_strconcat ("mlp.dense", strrchr (mp->name, '.'), NULL));
  }
  if (mp->part == MODEL_PART_HEAD && mp->tensor == m->head_bias) {
    /* Newer HF versions also store the decoder bias under decoder.bias. */
    if (m->config.arch == STSIM_ARCH_BERT)
      add_candidate (c, g_strdup ("cls.predictions.decoder.bias"));
    else if (m->config.arch == STSIM_ARCH_ROBERTA)
      add_candidate (c, g_strdup ("lm_head.decoder.bias"));
  }
  if (mp->is_ln) {
    guint n = c->len;
    for (guint i = 0; i < n; i++) {
      char *gb = gamma_beta (c->pdata[i]);
      if (gb)
        add_candidate (c, gb);
    }
  }
  return c;
}

static char *
shape_text (const gint64 *shape, guint n)
{
  GString *s = g_string_new ("[");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static char *
config_hint (const StsimModelConfig *c)
{
  if (c->arch == STSIM_ARCH_DISTILBERT)
    return g_strdup_printf ("vocab_size %d, dim %d, hidden_dim %d, max_position_embeddings %d, n_layers %d",
                            c->vocab_size, c->hidden_size, c->intermediate_size, c->max_position_embeddings,
                            c->num_layers);
  return g_strdup_printf ("vocab_size %d, hidden_size %d, intermediate_size %d, max_position_embeddings %d, "
                          "type_vocab_size %d, num_hidden_layers %d", c->vocab_size, c->hidden_size,
                          c->intermediate_size, c->max_position_embeddings, c->type_vocab_size, c->num_layers);
}

/* Reads tensor @fname of @st into @t (shape checked, converted to fp32, finite). */
static gboolean
read_param (StsimModel *m, const StsimSafetensors *st, const char *fname, StsimTensor *t, GError **error)
{
  const StsimTensorInfo *info = stsim_safetensors_get_info (st, fname);
  const char *path = stsim_safetensors_get_path (st);
  gboolean same = info->n_dims == (guint) t->ndim;
  for (int i = 0; same && i < t->ndim; i++)
    same = info->shape[i] == t->shape[i];
  if (!same) {
    g_autofree char *have = shape_text (info->shape, info->n_dims);
    g_autofree char *want = shape_text (t->shape, (guint) t->ndim);
    g_autofree char *hint = config_hint (&m->config);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: tensor '%s' has shape %s, expected %s from config.json (%s)",
                 path, fname, have, want, hint);
    return FALSE;
  }
  if (info->dtype != STSIM_DTYPE_F32 && info->dtype != STSIM_DTYPE_F16 && info->dtype != STSIM_DTYPE_BF16
      && info->dtype != STSIM_DTYPE_F64) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 "%s: tensor '%s' has dtype %s; model weights must be F32, F16, BF16 or F64",
                 path, fname, stsim_dtype_name (info->dtype));
    return FALSE;
  }
  if (!stsim_safetensors_read_f32 (st, fname, t->shape, (guint) t->ndim, t->data, error))
    return FALSE;
  for (gint64 i = 0; i < t->numel; i++)
    if (!isfinite (t->data[i])) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NUMERIC,
                   "%s: tensor '%s' holds %s at element %" G_GINT64_FORMAT " (a corrupt or diverged checkpoint)",
                   path, fname, isnan (t->data[i]) ? "NaN" : "Inf", i);
      return FALSE;
    }
  return TRUE;
}

/* The tied decoder weight, when a checkpoint stores it, must be the word
 * embedding matrix: stsim (like HF with tie_word_embeddings) computes the
 * logits with the embeddings, so a different stored decoder would be
 * silently replaced. Refuse instead. */
static gboolean
check_tied_decoder (StsimModel *m, const StsimSafetensors *st, GError **error)
{
  static const char *const names[] = { "cls.predictions.decoder.weight", "lm_head.decoder.weight",
                                       "vocab_projector.weight", NULL };
  for (const char *const *n = names; *n; n++) {
    if (stsim_safetensors_get_info (st, *n) == NULL)
      continue;
    g_autofree float *buf = g_new (float, m->word->numel);
    StsimTensor tmp = *m->word;
    tmp.data = buf;
    if (!read_param (m, st, *n, &tmp, error))
      return FALSE;
    if (memcmp (buf, m->word->data, (gsize) m->word->numel * sizeof (float)) != 0) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                   "%s: tensor '%s' differs from the word embeddings; stsim ties the MLM decoder to the word "
                   "embeddings and cannot load an untied head (drop the tensor to use the tied one)",
                   stsim_safetensors_get_path (st), *n);
      return FALSE;
    }
  }
  return TRUE;
}

/* Tensors of the encoder that the config does not account for (more layers
 * than num_hidden_layers, say) mean config and weights disagree. */
static gboolean
check_unexpected (StsimModel *m, const StsimSafetensors *st, GHashTable *used, GError **error)
{
  const char *prefix = stsim_model_arch_prefix (m->config.arch);
  gsize n = 0;
  const char *const *names = stsim_safetensors_list (st, &n);
  for (gsize i = 0; i < n; i++) {
    const char *name = names[i];
    if (g_hash_table_contains (used, name))
      continue;
    const char *bare = g_str_has_prefix (name, prefix) ? name + strlen (prefix) : name;
    if (!g_str_has_prefix (bare, "embeddings.") && !g_str_has_prefix (bare, "encoder.")
        && !g_str_has_prefix (bare, "transformer."))
      continue;
    if (g_str_has_suffix (bare, "position_ids"))  /* an int buffer old checkpoints carry */
      continue;
    /* A second copy, with or without the prefix, of a tensor that was read. */
    g_autofree char *other = name != bare ? g_strdup (bare) : g_strconcat (prefix, bare, NULL);
    if (g_hash_table_contains (used, other))
      continue;
    g_autofree char *hint = config_hint (&m->config);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: tensor '%s' is not part of the model config.json describes (%s)",
                 stsim_safetensors_get_path (st), name, hint);
    return FALSE;
  }
  return TRUE;
}

static gboolean
load_weights (StsimModel *m, const char *path, GError **error)
{
  g_autoptr(StsimSafetensors) st = stsim_safetensors_open (path, error);
  if (st == NULL)
    return FALSE;
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < m->params->len; i++) {
    ModelParam *mp = m->params->pdata[i];
    if (mp->part == MODEL_PART_POOLER && (m->flags & STSIM_MODEL_RESET_POOLER)) {
      stsim_model_init_param (m, mp);
      m->init_flags |= STSIM_MODEL_POOLER;
      continue;
    }
    g_autoptr(GPtrArray) cand = candidates (m, mp);
    const char *found = NULL;
    for (guint k = 0; k < cand->len && !found; k++)
      if (stsim_safetensors_get_info (st, cand->pdata[k]) != NULL)
        found = cand->pdata[k];
    if (found == NULL) {
      if (mp->part != MODEL_PART_ENCODER) {
        /* Asked for but absent (a BertModel file without the MLM head, a
         * checkpoint without a pooler): fresh init, as HF does. */
        stsim_model_init_param (m, mp);
        m->init_flags |= mp->part == MODEL_PART_POOLER ? STSIM_MODEL_POOLER : STSIM_MODEL_MLM_HEAD;
        continue;
      }
      g_autofree char *want = shape_text (mp->tensor->shape, (guint) mp->tensor->ndim);
      g_autofree char *hint = config_hint (&m->config);
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                   "%s: tensor '%s' %s is missing (also tried '%s'); the weights do not match config.json (%s)",
                   path, (char *) cand->pdata[0], want, cand->len > 1 ? (char *) cand->pdata[1] : "", hint);
      return FALSE;
    }
    if (!read_param (m, st, found, mp->tensor, error))
      return FALSE;
    g_hash_table_add (used, g_strdup (found));
  }
  if ((m->flags & STSIM_MODEL_MLM_HEAD) && !check_tied_decoder (m, st, error))
    return FALSE;
  return check_unexpected (m, st, used, error);
}

StsimModel *
stsim_model_load (const char *dir, guint flags, guint64 seed, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                 "model folder %s does not exist (expected config.json, model.safetensors and tokenizer files)",
                 dir);
    return NULL;
  }
  g_autofree char *cfg_path = g_build_filename (dir, "config.json", NULL);
  g_autofree char *st_path = g_build_filename (dir, "model.safetensors", NULL);
  StsimModelConfig config;
  if (!stsim_model_config_load (cfg_path, &config, error))
    return NULL;
  if (!g_file_test (st_path, G_FILE_TEST_EXISTS)) {
    g_autofree char *bin = g_build_filename (dir, "pytorch_model.bin", NULL);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s does not exist%s", st_path,
                 g_file_test (bin, G_FILE_TEST_EXISTS)
                   ? "; only pytorch_model.bin is there: convert it once to model.safetensors "
                     "(safetensors.torch.save_file on the state dict)" : "");
    return NULL;
  }
  g_autoptr(StsimModel) m = stsim_model_alloc (&config, flags, seed, error);
  if (m == NULL)
    return NULL;
  m->source = g_strdup (dir);
  if (!read_tokenizer_files (m->tokenizer_files, dir, error))
    return NULL;
  if (g_hash_table_contains (m->tokenizer_files, "vocab.json") != g_hash_table_contains (m->tokenizer_files, "merges.txt")
      && !g_hash_table_contains (m->tokenizer_files, "vocab.txt")) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "%s: a BPE tokenizer needs both vocab.json and "
                 "merges.txt; %s is missing", dir,
                 g_hash_table_contains (m->tokenizer_files, "merges.txt") ? "vocab.json" : "merges.txt");
    return NULL;
  }
  if (has_vocab_files (m->tokenizer_files)) {
    m->tokenizer = stsim_tokenizer_new_from_dir (dir, error);
    if (m->tokenizer == NULL || !stsim_model_check_tokenizer (m, m->tokenizer, dir, error))
      return NULL;
  }
  if (!load_weights (m, st_path, error))
    return NULL;
  return g_steal_pointer (&m);
}

/* ---- saving ----------------------------------------------------------- */

/* The checkpoint name of a store parameter. */
static char *
file_name (StsimModel *m, const ModelParam *mp)
{
  if (mp->part == MODEL_PART_HEAD)
    return g_strdup (mp->name);
  /* HF's DistilBERT has no pooler: stsim's (a SimCSE MLP) goes unprefixed. */
  if (mp->part == MODEL_PART_POOLER && m->config.arch == STSIM_ARCH_DISTILBERT)
    return g_strdup (mp->name);
  return g_strconcat (stsim_model_arch_prefix (m->config.arch), mp->name, NULL);
}

static gboolean
write_weights (StsimModel *m, const char *dir, GError **error)
{
  g_autoptr(StsimSafetensorsWriter) w = stsim_safetensors_writer_new ();
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  if (!stsim_safetensors_writer_set_metadata (w, "format", "pt", error))
    return FALSE;
  for (guint i = 0; i < m->params->len; i++) {
    ModelParam *mp = m->params->pdata[i];
    char *name = file_name (m, mp);
    g_ptr_array_add (names, name);
    if (!stsim_safetensors_writer_add_f32 (w, name, mp->tensor->shape, (guint) mp->tensor->ndim,
                                           mp->tensor->data, error))
      return FALSE;
  }
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  return stsim_safetensors_writer_write (w, path, error);
}

static char *
tokenizer_config_json (StsimModel *m)
{
  int max_len = stsim_model_max_tokens (m);
  if (m->config.arch == STSIM_ARCH_ROBERTA)
    return g_strdup_printf ("{\n  \"model_max_length\": %d,\n  \"tokenizer_class\": \"RobertaTokenizer\"\n}\n",
                            max_len);
  return g_strdup_printf ("{\n  \"do_lower_case\": true,\n  \"model_max_length\": %d,\n"
                          "  \"tokenizer_class\": \"%s\"\n}\n", max_len,
                          m->config.arch == STSIM_ARCH_DISTILBERT ? "DistilBertTokenizer" : "BertTokenizer");
}

static gboolean
write_folder (StsimModel *m, const char *tmp, GError **error)
{
  int bos = -1, eos = -1;
  if (m->tokenizer != NULL && m->config.arch == STSIM_ARCH_ROBERTA) {
    bos = stsim_tokenizer_cls_id (m->tokenizer);
    eos = stsim_tokenizer_sep_id (m->tokenizer);
  }
  g_autofree char *config = stsim_model_config_to_json (&m->config, bos, eos);
  if (!write_text (tmp, "config.json", config, error) || !write_weights (m, tmp, error))
    return FALSE;

  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, m->tokenizer_files);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (!write_bytes (tmp, k, v, error))
      return FALSE;
  if (m->tokenizer != NULL && !has_vocab_files (m->tokenizer_files)) {
    if (stsim_tokenizer_get_kind (m->tokenizer) != STSIM_TOKENIZER_WORDPIECE) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                   "cannot save the BPE tokenizer: the model was given no vocab.json/merges.txt "
                   "(use stsim_model_set_tokenizer_dir)");
      return FALSE;
    }
    g_autoptr(GBytes) vocab = wordpiece_vocab_from_tokenizer (m->tokenizer);
    if (!write_bytes (tmp, "vocab.txt", vocab, error))
      return FALSE;
  }
  if (m->tokenizer != NULL && !g_hash_table_contains (m->tokenizer_files, "tokenizer_config.json")) {
    g_autofree char *tc = tokenizer_config_json (m);
    if (!write_text (tmp, "tokenizer_config.json", tc, error))
      return FALSE;
  }
  return TRUE;
}

/* Weight files of other formats or shards: a stale copy next to the new
 * model.safetensors could be loaded instead of it, so they are not kept. */
static gboolean
is_stale_weight_file (const char *name)
{
  return g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".bin")
         || g_str_has_suffix (name, ".h5") || g_str_has_suffix (name, ".msgpack")
         || g_str_has_suffix (name, ".index.json") || strcmp (name, "config.json") == 0;
}

/* Moves what else the old folder holds (results, READMEs, subfolders) into
 * the new one, so that replacing a model does not delete them. */
static gboolean
carry_over (const char *old_dir, const char *new_dir, GError **error)
{
  g_autoptr(GError) local = NULL;
  GDir *d = g_dir_open (old_dir, 0, &local);
  if (d == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s: %s", old_dir, local->message);
    return FALSE;
  }
  g_autoptr(GPtrArray) moved = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  gboolean ok = TRUE;
  while (ok && (name = g_dir_read_name (d)) != NULL) {
    if (is_tokenizer_file (name) || is_stale_weight_file (name))
      continue;
    g_autofree char *from = g_build_filename (old_dir, name, NULL);
    g_autofree char *to = g_build_filename (new_dir, name, NULL);
    if (g_rename (from, to) != 0) {
      int e = errno;
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "moving %s to %s: %s", from, to, g_strerror (e));
      ok = FALSE;
    } else {
      g_ptr_array_add (moved, g_strdup (name));
    }
  }
  g_dir_close (d);
  if (!ok) {
    /* Put back what was moved: the old folder stays as it was. */
    for (guint i = 0; i < moved->len; i++) {
      g_autofree char *from = g_build_filename (new_dir, moved->pdata[i], NULL);
      g_autofree char *to = g_build_filename (old_dir, moved->pdata[i], NULL);
      g_rename (from, to);
    }
  }
  return ok;
}

gboolean
stsim_model_save (StsimModel *model, const char *dir, GError **error)
{
  g_return_val_if_fail (model != NULL && dir != NULL, FALSE);
  g_autofree char *clean = g_canonicalize_filename (dir, NULL);
  g_autofree char *parent = g_path_get_dirname (clean);
  g_autofree char *base = g_path_get_basename (clean);
  gboolean exists = g_file_test (clean, G_FILE_TEST_EXISTS);
  if (exists && !g_file_test (clean, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s exists and is not a folder", clean);
    return FALSE;
  }
  if (g_mkdir_with_parents (parent, 0755) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "creating %s: %s", parent, g_strerror (e));
    return FALSE;
  }
  g_autofree char *tmp = g_strdup_printf ("%s/.%s.tmp-XXXXXX", parent, base);
  if (g_mkdtemp_full (tmp, 0755) == NULL) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "creating a temporary folder next to %s: %s",
                 clean, g_strerror (e));
    return FALSE;
  }
  if (!write_folder (model, tmp, error)) {
    remove_tree (tmp);
    return FALSE;
  }
  if (!exists) {
    if (g_rename (tmp, clean) != 0) {
      int e = errno;
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "renaming %s to %s: %s", tmp, clean, g_strerror (e));
      remove_tree (tmp);
      return FALSE;
    }
    return TRUE;
  }
  if (!carry_over (clean, tmp, error)) {
    remove_tree (tmp);
    return FALSE;
  }
  /* One atomic swap where the kernel has it; otherwise the old folder is
   * moved aside first (a reader then sees either folder, or briefly none). */
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, clean, RENAME_EXCHANGE) == 0) {
    remove_tree (tmp);
    return TRUE;
  }
  /* rename() of a folder onto an empty folder replaces it. */
  g_autofree char *aside = g_strdup_printf ("%s/.%s.old-XXXXXX", parent, base);
  if (g_mkdtemp_full (aside, 0755) == NULL || g_rename (clean, aside) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "replacing %s: %s (the new model is in %s)",
                 clean, g_strerror (e), tmp);
    g_rmdir (aside);
    return FALSE;
  }
  if (g_rename (tmp, clean) != 0) {
    int e = errno;
    g_rename (aside, clean);
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "replacing %s: %s (the new model is in %s)",
                 clean, g_strerror (e), tmp);
    return FALSE;
  }
  remove_tree (aside);
  return TRUE;
}
