/* state.c: the trainer's resume state, one safetensors file written
 * atomically: <output>/state/state.safetensors.
 *
 * Tensors: for every trainable store S (the student, the BN head, objective
 * stores) "S.param", "S.adam_m", "S.adam_v" (whole blocks, F32), and the BN
 * head's running statistics. Metadata "stsim.train_state": a JSON object
 * with the position (step, epoch, index), the seed, the Adam step counts,
 * best score and step, skipped-step counts, and each store's view names
 * and sizes, checked on load so that a state never silently lands in a
 * network with another shape, and the number of ranks of a data-parallel
 * run (told on resume; the run itself does not depend on it, see
 * docs/distributed.md). RNG streams need no saving: dropout, masking
 * and shuffling are counter-based functions of (seed, step / epoch). */
#include "train/trainer-private.h"
#include "train/dist.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include "stsim/stsim-safetensors.h"
#include "io/bounded.h"

#define STATE_FILE "state.safetensors"
#define STATE_KEY "stsim.train_state"
#define STATE_VERSION 1

static char *
store_signature (StsimParamStore *s)
{
  /* View names, shapes and flags: enough to refuse a state from another net. */
  GChecksum *ck = g_checksum_new (G_CHECKSUM_SHA256);
  for (gsize i = 0; i < stsim_param_store_get_n_views (s); i++) {
    const StsimParamView *v = stsim_param_store_get_view (s, i);
    g_checksum_update (ck, (const guchar *) v->name, strlen (v->name) + 1);
    g_checksum_update (ck, (const guchar *) &v->numel, sizeof v->numel);
    g_checksum_update (ck, (const guchar *) &v->offset, sizeof v->offset);
  }
  char *r = g_strdup (g_checksum_get_string (ck));
  g_checksum_free (ck);
  return r;
}

gboolean
stsim_trainer_save_state (StsimTrainer *tr, GError **error)
{
  if (g_mkdir_with_parents (tr->state_dir, 0755) != 0) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot create %s: %s", tr->state_dir, g_strerror (e));
    return FALSE;
  }
  g_autoptr(StsimSafetensorsWriter) w = stsim_safetensors_writer_new ();
  g_autoptr(JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, STATE_VERSION);
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, tr->step);
  json_builder_set_member_name (b, "total_steps");
  json_builder_add_int_value (b, tr->total_steps);
  json_builder_set_member_name (b, "epoch");
  json_builder_add_int_value (b, tr->epoch);
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, tr->index);
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, tr->seed);
  json_builder_set_member_name (b, "n_examples");
  json_builder_add_int_value (b, stsim_corpus_get_n (tr->corpus));
  json_builder_set_member_name (b, "batch_size");
  json_builder_add_int_value (b, tr->batch_size);
  json_builder_set_member_name (b, "has_best");
  json_builder_add_boolean_value (b, tr->has_best);
  json_builder_set_member_name (b, "best");
  json_builder_add_double_value (b, tr->has_best ? tr->best : 0.0);
  json_builder_set_member_name (b, "best_step");
  json_builder_add_int_value (b, tr->best_step);
  json_builder_set_member_name (b, "bad_total");
  json_builder_add_int_value (b, tr->bad_total);
  json_builder_set_member_name (b, "bad_in_row");
  json_builder_add_int_value (b, tr->bad_in_row);
  json_builder_set_member_name (b, "world_size");
  json_builder_add_int_value (b, tr->world);
  json_builder_set_member_name (b, "stores");
  json_builder_begin_array (b);
  for (guint i = 0; i < tr->engine->stores->len; i++) {
    StsimParamStore *s = g_ptr_array_index (tr->engine->stores, i);
    StsimAdamW *opt = g_ptr_array_index (tr->engine->opts, i);
    const char *name = stsim_param_store_get_name (s);
    gint64 n = 0, nm = 0, nv = 0;
    float *data = stsim_param_store_get_data (s, &n);
    float *m = stsim_adamw_get_m (opt, &nm);
    float *v = stsim_adamw_get_v (opt, &nv);
    g_autofree char *sig = store_signature (s);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, name);
    json_builder_set_member_name (b, "n_floats");
    json_builder_add_int_value (b, n);
    json_builder_set_member_name (b, "signature");
    json_builder_add_string_value (b, sig);
    json_builder_set_member_name (b, "adam_t");
    json_builder_add_int_value (b, stsim_adamw_get_t (opt));
    json_builder_end_object (b);
    /* The writer copies the names; the data stay borrowed until write(). */
    g_autofree char *k1 = g_strdup_printf ("%u.%s.param", i, name);
    g_autofree char *k2 = g_strdup_printf ("%u.%s.adam_m", i, name);
    g_autofree char *k3 = g_strdup_printf ("%u.%s.adam_v", i, name);
    if (!stsim_safetensors_writer_add_f32 (w, k1, &n, 1, data, error) ||
        !stsim_safetensors_writer_add_f32 (w, k2, &nm, 1, m, error) ||
        !stsim_safetensors_writer_add_f32 (w, k3, &nv, 1, v, error))
      return FALSE;
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  if (!stsim_head_save_state (tr->engine->head, w, error))
    return FALSE;
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *meta = stsim_json_to_data (root, FALSE, NULL);
  if (!stsim_safetensors_writer_set_metadata (w, "format", "stsim trainer state", error) ||
      !stsim_safetensors_writer_set_metadata (w, STATE_KEY, meta, error) ||
      (tr->fingerprint_json &&
       !stsim_safetensors_writer_set_metadata (w, STSIM_RUN_FINGERPRINT_KEY, tr->fingerprint_json, error)))
    return FALSE;
  g_autofree char *path = g_build_filename (tr->state_dir, STATE_FILE, NULL);
  return stsim_safetensors_writer_write (w, path, error);
}

gboolean
stsim_trainer_remove_state (StsimTrainer *tr, GError **error)
{
  g_autofree char *path = g_build_filename (tr->state_dir, STATE_FILE, NULL);
  if (g_unlink (path) != 0 && errno != ENOENT) {
    int e = errno;
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "cannot delete %s (keep_state = none): %s", path,
                 g_strerror (e));
    return FALSE;
  }
  /* Only the folder we made: anything else put there stays, and so does the folder. */
  g_rmdir (tr->state_dir);
  return TRUE;
}

static gboolean
get_int (JsonObject *o, const char *key, gint64 *out, const char *path, GError **error)
{
  JsonNode *n = json_object_get_member (o, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: state lacks the integer '%s'", path, key);
    return FALSE;
  }
  *out = json_node_get_int (n);
  return TRUE;
}

/* Block @name, exactly @n floats of F32 (a converted dtype would not
 * resume bit-identically), into @dst. Errors name the file. */
gboolean
stsim_train_read_block (StsimSafetensors *st, const char *name, float *dst, gint64 n, GError **error)
{
  const StsimTensorInfo *t = stsim_safetensors_get_info (st, name);
  if (t && t->dtype != STSIM_DTYPE_F32) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: state tensor '%s' has dtype %s, expected F32",
                 stsim_safetensors_get_path (st), name, stsim_dtype_name (t->dtype));
    return FALSE;
  }
  return stsim_safetensors_read_f32 (st, name, &n, 1, dst, error);
}

/* Store @i of the state (entry @en of its "stores" list) into the
 * engine's store and optimizer, after checking that they match. */
static gboolean
load_store (StsimTrainer *tr, StsimSafetensors *r, JsonNode *en, guint i, const char *path, GError **error)
{
  StsimParamStore *s = g_ptr_array_index (tr->engine->stores, i);
  StsimAdamW *opt = g_ptr_array_index (tr->engine->opts, i);
  if (!JSON_NODE_HOLDS_OBJECT (en)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: malformed store entry %u", path, i);
    return FALSE;
  }
  JsonObject *e = json_node_get_object (en);
  const char *name = json_object_get_string_member_with_default (e, "name", "");
  const char *sig = json_object_get_string_member_with_default (e, "signature", "");
  g_autofree char *mine = store_signature (s);
  gint64 adam_t;
  if (strcmp (name, stsim_param_store_get_name (s)) != 0 || strcmp (sig, mine) != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: parameter store '%s' does not match this recipe's '%s' (another model config?)", path, name,
                 stsim_param_store_get_name (s));
    return FALSE;
  }
  g_autofree char *t_field = g_strdup_printf ("stores[%u].adam_t", i);
  if (!get_int (e, "adam_t", &adam_t, path, error) ||
      !stsim_run_state_check_range (adam_t, 0, tr->step, t_field, path, error))
    return FALSE;
  gint64 n = 0, nm = 0, nv = 0;
  float *data = stsim_param_store_get_data (s, &n);
  float *m = stsim_adamw_get_m (opt, &nm);
  float *v = stsim_adamw_get_v (opt, &nv);
  g_autofree char *k1 = g_strdup_printf ("%u.%s.param", i, name);
  g_autofree char *k2 = g_strdup_printf ("%u.%s.adam_m", i, name);
  g_autofree char *k3 = g_strdup_printf ("%u.%s.adam_v", i, name);
  if (!stsim_train_read_block (r, k1, data, n, error) || !stsim_train_read_block (r, k2, m, nm, error) ||
      !stsim_train_read_block (r, k3, v, nv, error))
    return FALSE;
  /* A NaN parameter would train on and fail only at the end; a negative
   * second moment makes sqrt() NaN at the first step. */
  if (!stsim_run_state_check_finite (data, n, k1, path, error) ||
      !stsim_run_state_check_finite (m, nm, k2, path, error) ||
      !stsim_run_state_check_nonnegative (v, nv, k3, path, error))
    return FALSE;
  stsim_adamw_set_t (opt, adam_t);
  return TRUE;
}

/* The saved fingerprint against this run's: every difference that
 * --allow-changed does not name is refused; the allowed ones are printed. */
static gboolean
check_fingerprint (StsimTrainer *tr, StsimSafetensors *r, const char *path, GError **error)
{
  const char *const *allowed = tr->options.allow_changed;
  const char *json = stsim_safetensors_get_metadata (r, STSIM_RUN_FINGERPRINT_KEY);
  if (!json) {
    if (allowed && g_strv_contains (allowed, "*")) {
      g_printerr ("warning: %s has no run fingerprint (written before stsim recorded one); resuming unchecked "
                  "(--allow-changed '*')\n", path);
      return TRUE;
    }
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: --resume refused: the state has no run fingerprint (written before stsim recorded one), so "
                 "it cannot be told from another run's; start again (--overwrite), or resume unchecked with "
                 "--allow-changed '*'", path);
    return FALSE;
  }
  g_autoptr(StsimRunFingerprint) saved = stsim_run_fingerprint_from_json (json, path, error);
  g_auto(GStrv) changed = NULL;
  /* Another rank count continues the same run: dropout, masking and
   * sampling are keyed by the rows' places in the whole batch. */
  const char *ranks = stsim_run_fingerprint_get (tr->fingerprint, "run:ranks");
  if (saved && ranks && stsim_run_fingerprint_get (saved, "run:ranks"))
    stsim_run_fingerprint_set (saved, "run:ranks", ranks);
  if (!saved || !stsim_run_fingerprint_compare (saved, tr->fingerprint, allowed, path, &changed, error))
    return FALSE;
  for (guint i = 0; changed && changed[i] && !tr->options.quiet; i++)
    g_printerr ("--allow-changed: %s\n", changed[i]);
  return TRUE;
}

/* The position fields of the state's JSON @o, checked (ranges, a finite
 * best) and set on @tr. */
static gboolean
load_position (StsimTrainer *tr, JsonObject *o, const char *path, GError **error)
{
  gint64 version, step, total, epoch, index, seed, n_ex, bs, best_step, bad_total, bad_in_row;
  if (!get_int (o, "version", &version, path, error) || !get_int (o, "step", &step, path, error) ||
      !get_int (o, "total_steps", &total, path, error) || !get_int (o, "epoch", &epoch, path, error) ||
      !get_int (o, "index", &index, path, error) || !get_int (o, "seed", &seed, path, error) ||
      !get_int (o, "n_examples", &n_ex, path, error) || !get_int (o, "batch_size", &bs, path, error) ||
      !get_int (o, "best_step", &best_step, path, error) || !get_int (o, "bad_total", &bad_total, path, error) ||
      !get_int (o, "bad_in_row", &bad_in_row, path, error))
    return FALSE;
  if (version != STATE_VERSION) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: state version %" G_GINT64_FORMAT
                 " (this stsim reads version %d)", path, version, STATE_VERSION);
    return FALSE;
  }
  /* The data order depends on these; resuming with others would not
   * continue the same run. (The schedule's length may change:
   * --allow-changed train.steps.) */
  if ((guint64) seed != tr->seed || (gsize) n_ex != stsim_corpus_get_n (tr->corpus) || (gsize) bs != tr->batch_size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: the state is from another run (seed %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                 " examples, batch %" G_GINT64_FORMAT "; this recipe: seed %" G_GUINT64_FORMAT ", %" G_GSIZE_FORMAT
                 " examples, batch %" G_GSIZE_FORMAT "); remove the state folder or use another [run] output",
                 path, seed, n_ex, bs, tr->seed, stsim_corpus_get_n (tr->corpus), tr->batch_size);
    return FALSE;
  }
  StsimRunStatePosition pos = {
    .step = step, .total_steps = (gint64) tr->total_steps, .epoch = epoch, .index = index,
    .n_examples = (gint64) stsim_corpus_get_n (tr->corpus), .batch_size = bs,
    .has_best = json_object_get_boolean_member_with_default (o, "has_best", FALSE),
    .best = json_object_get_double_member_with_default (o, "best", 0.0),
    .best_step = best_step, .bad_total = bad_total, .bad_in_row = bad_in_row,
  };
  if (!stsim_run_state_check_position (&pos, path, error))
    return FALSE;
  tr->step = step;
  tr->epoch = epoch;
  tr->index = index;
  tr->has_best = pos.has_best;
  tr->best = pos.best;
  tr->best_step = best_step;
  tr->bad_total = bad_total;
  tr->bad_in_row = bad_in_row;
  return TRUE;
}

gboolean
stsim_trainer_load_state (StsimTrainer *tr, GError **error)
{
  g_autofree char *path = g_build_filename (tr->state_dir, STATE_FILE, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND, "no training state at %s", path);
    return FALSE;
  }
  g_autoptr(StsimSafetensors) r = stsim_safetensors_open (path, error);
  if (!r)
    return FALSE;
  const char *meta = stsim_safetensors_get_metadata (r, STATE_KEY);
  g_autoptr(JsonParser) parser = json_parser_new ();
  if (!meta || !stsim_json_load_data (parser, meta, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT, "%s: not a stsim trainer state (no '%s' metadata)", path,
                 STATE_KEY);
    return FALSE;
  }
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  /* States from before data-parallel runs have no world_size: one rank.
   * Another count continues the run (docs/distributed.md). */
  gint64 world = json_object_get_int_member_with_default (o, "world_size", 1);
  if (world != tr->world && !tr->options.quiet)
    g_printerr ("resuming a run of %" G_GINT64_FORMAT " rank(s) on %d: the same run, up to the summation order of "
                "the gradient all-reduce\n", world, tr->world);
  /* Then the fingerprint: a changed run is told as such, key by key. */
  if (!check_fingerprint (tr, r, path, error) || !load_position (tr, o, path, error))
    return FALSE;
  JsonNode *sn = json_object_get_member (o, "stores");
  if (!sn || !JSON_NODE_HOLDS_ARRAY (sn) || json_array_get_length (json_node_get_array (sn)) != tr->engine->stores->len) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_CHECKPOINT,
                 "%s: the state holds another set of parameter stores than this recipe trains (%u)", path,
                 tr->engine->stores->len);
    return FALSE;
  }
  JsonArray *sa = json_node_get_array (sn);
  for (guint i = 0; i < tr->engine->stores->len; i++)
    if (!load_store (tr, r, json_array_get_element (sa, i), i, path, error))
      return FALSE;
  return stsim_head_load_state (tr->engine->head, r, error);
}

gboolean
stsim_train_write_file (const char *path, const char *contents, gssize len, GError **error)
{
  GError *local = NULL;
  if (!g_file_set_contents (path, contents, len, &local)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_IO, "%s", local->message);
    g_error_free (local);
    return FALSE;
  }
  return TRUE;
}

/* ---- several ranks ------------------------------------------------------------------ */

gboolean
stsim_trainer_sync_flag (StsimTrainer *tr, gboolean root_ok, const char *what, GError **error)
{
  if (tr->world == 1)
    return root_ok;
  gint32 flag = root_ok ? 1 : 0;
  GError *local = NULL;
  if (!stsim_dist_bcast (&flag, sizeof flag, 0, &local)) {
    if (error && !*error)
      g_propagate_error (error, local);
    else
      g_error_free (local);
    return FALSE;
  }
  if (!flag && tr->rank != 0)
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_FAILED, "%srank 0 failed while %s (its message says why)",
                 stsim_dist_prefix (), what);
  return flag != 0;
}

gboolean
stsim_trainer_sync_state (StsimTrainer *tr, gboolean root_ok, GError **error)
{
  if (!stsim_trainer_sync_flag (tr, root_ok, "loading or preparing the training state", error))
    return FALSE;
  if (tr->world == 1)
    return TRUE;
  for (guint i = 0; i < tr->engine->stores->len; i++) {
    StsimParamStore *s = g_ptr_array_index (tr->engine->stores, i);
    StsimAdamW *opt = g_ptr_array_index (tr->engine->opts, i);
    gint64 n = 0, nm = 0, nv = 0;
    float *data = stsim_param_store_get_data (s, &n);
    float *m = stsim_adamw_get_m (opt, &nm);
    float *v = stsim_adamw_get_v (opt, &nv);
    guint64 t = stsim_adamw_get_t (opt);
    if (!stsim_dist_bcast (data, n * sizeof (float), 0, error) || !stsim_dist_bcast (m, nm * sizeof (float), 0, error) ||
        !stsim_dist_bcast (v, nv * sizeof (float), 0, error) || !stsim_dist_bcast (&t, sizeof t, 0, error))
      return FALSE;
    stsim_adamw_set_t (opt, t);
  }
  if (!stsim_head_bcast_state (tr->engine->head, error))
    return FALSE;
  /* Position and selection; plain integers and one double. */
  guint64 pos[7] = { tr->step, tr->epoch, tr->index, tr->has_best, tr->best_step, tr->bad_total, tr->bad_in_row };
  double best = tr->best;
  if (!stsim_dist_bcast (pos, sizeof pos, 0, error) || !stsim_dist_bcast (&best, sizeof best, 0, error))
    return FALSE;
  tr->step = pos[0];
  tr->epoch = pos[1];
  tr->index = pos[2];
  tr->has_best = pos[3] != 0;
  tr->best_step = pos[4];
  tr->bad_total = pos[5];
  tr->bad_in_row = pos[6];
  tr->best = best;
  return TRUE;
}
