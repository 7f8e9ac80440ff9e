/* Unit tests of the vocabulary trainer (core/text/vocab-trainer.c).
 *
 * Expected vocabularies are worked out by hand below from HF's BpeTrainer
 * rules (most frequent pair first, ties to the smallest (left id, right id),
 * "##" continuations for WordPiece); whole-corpus parity with Hugging Face's
 * trainers is compare-vocab.py's job. The trained folders are then loaded by
 * the tokenizer, the bert and roberta encoders, a saved model and
 * stsim-encode, as a user would. */
#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include "stsim/stsim-model.h"
#include "stsim/stsim-model-encoder.h"
#include "stsim/stsim-registry.h"
#include "stsim/stsim-tokenizer.h"
#include "stsim/stsim-vocab.h"
#include "test-util.h"

static StsimRegistry *reg;

static StsimVocabTrainer *
train_text (StsimVocabOptions *o, const char *text, GError **error)
{
  StsimVocabTrainer *t = stsim_vocab_trainer_new (o);
  if (!stsim_vocab_trainer_add_text (t, text, strlen (text), "text", error) || !stsim_vocab_trainer_train (t, error)) {
    stsim_vocab_trainer_free (t);
    return NULL;
  }
  return t;
}

static void
assert_tokens (StsimVocabTrainer *t, const char *const *want)
{
  guint n = g_strv_length ((char **) want);
  for (guint i = 0; i < MIN (n, stsim_vocab_trainer_n_tokens (t)); i++)
    g_assert_cmpstr (stsim_vocab_trainer_token (t, i), ==, want[i]);
  g_assert_cmpuint (stsim_vocab_trainer_n_tokens (t), ==, n);
}

/* "hug hug hug pug pun": hug x3, pug, pun. Ids: specials 0-4, g h n p u
 * 5-9, ##g ##n ##u 10-12. Pairs: (##u,##g) 4, (h,##u) 3, (p,##u) 2,
 * (##u,##n) 1. Merges: ##u+##g -> ##ug (4); h+##ug -> hug (3); then three
 * pairs of count 1: (p,##u)=(8,12) < (p,##ug)=(8,13) < (pu,##n)=(15,11), so
 * pu, pug, pun in that order ((##u,##n) dropped to 0 when pu formed). */
static const char *const hug_all[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "g", "h", "n", "p", "u",
                                       "##g", "##n", "##u", "##ug", "hug", "pu", "pug", "pun", NULL };

static void
test_wordpiece_by_hand (void)
{
  g_autoptr(GError) error = NULL;
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 100);
  o.lowercase = TRUE;
  /* Upper case, an accent and punctuation normalise away or split off. */
  g_autoptr(StsimVocabTrainer) t = train_text (&o, "Hug hug HÙG pug\npun\n", &error);
  g_assert_no_error (error);
  assert_tokens (t, hug_all);
  g_assert_cmpuint (stsim_vocab_trainer_n_initial (t), ==, 13);
  g_assert_cmpuint (stsim_vocab_trainer_n_merges (t), ==, 5);

  /* The size stops it right after the token that fills it. */
  stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 16);
  g_autoptr(StsimVocabTrainer) t16 = train_text (&o, "hug hug hug pug pun", &error);
  g_assert_no_error (error);
  const char *const want16[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "g", "h", "n", "p", "u",
                                 "##g", "##n", "##u", "##ug", "hug", "pu", NULL };
  assert_tokens (t16, want16);

  /* min_frequency 2: the count-1 pairs are never merged. */
  stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 100);
  o.min_frequency = 2;
  g_autoptr(StsimVocabTrainer) tf = train_text (&o, "hug hug hug pug pun", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stsim_vocab_trainer_n_tokens (tf), ==, 15);
  g_assert_cmpstr (stsim_vocab_trainer_token (tf, 14), ==, "hug");

  /* Cased: no lowercasing, so "Hug" is its own word with an "H". */
  stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 100);
  g_autoptr(StsimVocabTrainer) tc = train_text (&o, "Hug pug", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stsim_vocab_trainer_token (tc, 5), ==, "H");
}

/* limit_alphabet 3 on hug x3, pug, pun: counts u 5, g 4, h 3, p 2, n 1, so n
 * and p go. Words lose those characters but keep their positions' "##":
 * pug -> ##u ##g, pun -> ##u. */
static void
test_limit_alphabet (void)
{
  g_autoptr(GError) error = NULL;
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 100);
  o.limit_alphabet = 3;
  g_autoptr(StsimVocabTrainer) t = train_text (&o, "hug hug hug pug pun", &error);
  g_assert_no_error (error);
  /* (##u,##g) 4 -> ##ug; (h,##ug) 3 -> hug. */
  const char *const want[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "g", "h", "u", "##g", "##u",
                               "##ug", "hug", NULL };
  assert_tokens (t, want);
}

/* "ab ab\n" -> pieces ab, Ġab, Ċ. Without specials and with only the seen
 * byte symbols: a b Ċ Ġ = 0-3; (a,b) 2 -> ab; (Ġ,ab) 1 -> Ġab. */
static void
test_bpe_by_hand (void)
{
  g_autoptr(GError) error = NULL;
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, STSIM_VOCAB_BPE, 1000);
  static const char *const none[] = { NULL };
  o.special_tokens = none;
  o.byte_alphabet = FALSE;
  g_autoptr(StsimVocabTrainer) t = train_text (&o, "ab ab\n", &error);
  g_assert_no_error (error);
  const char *const want[] = { "a", "b", "\u010a", "\u0120", "ab", "\u0120ab", NULL };
  assert_tokens (t, want);
  const char *l, *r;
  stsim_vocab_trainer_merge (t, 1, &l, &r);
  g_assert_cmpstr (l, ==, "\u0120");
  g_assert_cmpstr (r, ==, "ab");

  /* Defaults: RoBERTa's specials, all 256 byte symbols in code point order. */
  stsim_vocab_options_init (&o, STSIM_VOCAB_BPE, 1000);
  g_autoptr(StsimVocabTrainer) d = train_text (&o, "ab ab\n", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stsim_vocab_trainer_n_tokens (d), ==, 5 + 256 + 2);
  g_assert_cmpstr (stsim_vocab_trainer_token (d, 0), ==, "<s>");
  g_assert_cmpstr (stsim_vocab_trainer_token (d, 4), ==, "<mask>");
  g_assert_cmpstr (stsim_vocab_trainer_token (d, 5), ==, "!");
  /* 188 printable bytes keep their code point; Ā (byte 0) comes next. */
  g_assert_cmpstr (stsim_vocab_trainer_token (d, 5 + 188), ==, "\u0100");
  g_assert_cmpstr (stsim_vocab_trainer_token (d, 5 + 255), ==, "\u0143");
  g_assert_cmpstr (stsim_vocab_trainer_token (d, 262), ==, "\u0120ab");
}

static void
expect_error (StsimVocabKind kind, gint64 size, const char *text, gsize len, GQuark domain, int code,
              const char *needle)
{
  g_autoptr(GError) error = NULL;
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, kind, size);
  g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
  if (stsim_vocab_trainer_add_text (t, text, len, "corpus.txt", &error))
    stsim_vocab_trainer_train (t, &error);
  g_assert_error (error, domain, code);
  if (strstr (error->message, needle) == NULL)
    g_error ("message lacks \"%s\": %s", needle, error->message);
}

static void
test_errors (void)
{
  expect_error (STSIM_VOCAB_WORDPIECE, 100, "", 0, STSIM_ERROR, STSIM_ERROR_DATA, "no words");
  expect_error (STSIM_VOCAB_WORDPIECE, 100, "\n \n\t\r\n", 6, STSIM_ERROR, STSIM_ERROR_DATA, "3 lines");
  expect_error (STSIM_VOCAB_BPE, 1000, "", 0, STSIM_ERROR, STSIM_ERROR_DATA, "no words");
  expect_error (STSIM_VOCAB_BPE, 1000, "text\nbi\0nary\n", 13, STSIM_ERROR, STSIM_ERROR_DATA,
                "corpus.txt:2: a NUL byte at byte 3");
  expect_error (STSIM_VOCAB_WORDPIECE, 100, "ok\nbad \xff\n", 9, STSIM_ERROR, STSIM_ERROR_ENCODING,
                "corpus.txt:2: invalid UTF-8 at byte 5");
  expect_error (STSIM_VOCAB_BPE, 1000, "\xc0\xaf", 2, STSIM_ERROR, STSIM_ERROR_ENCODING, "corpus.txt:1:");
  /* 13 initial symbols: 5 specials + g h n p u + ##g ##n ##u. */
  expect_error (STSIM_VOCAB_WORDPIECE, 12, "hug pug pun", 11, STSIM_ERROR, STSIM_ERROR_INVALID,
                "below the 13 initial symbols of this corpus (5 special tokens + 5 alphabet characters + 3 ## "
                "continuations): ask for at least 13");
  expect_error (STSIM_VOCAB_BPE, 260, "x", 1, STSIM_ERROR, STSIM_ERROR_INVALID, "ask for at least 261");

  g_autoptr(GError) error = NULL;
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, STSIM_VOCAB_BPE, 1000);
  g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
  g_assert_false (stsim_vocab_trainer_add_file (t, "/nonexistent/corpus.txt", &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "/nonexistent/corpus.txt"));
  g_clear_error (&error);
  g_assert_false (stsim_vocab_trainer_add_file (t, g_get_tmp_dir (), &error));
  g_assert_error (error, STSIM_ERROR, STSIM_ERROR_INVALID);
}

typedef struct {
  guint    read_calls, merge_calls;
  gboolean read_done;
  guint64  last;
} ProgressLog;

static void
log_progress (const char *stage, guint64 done, guint64 total, gpointer data)
{
  ProgressLog *p = data;
  g_assert_cmpuint (done, <=, total);
  if (g_str_equal (stage, "read")) {
    g_assert_false (p->read_done);
    g_assert_cmpuint (done, >, p->last);
    p->read_done = done == total;
    p->read_calls++;
  } else {
    g_assert_cmpstr (stage, ==, "merge");
    g_assert_true (p->read_done);
    p->merge_calls++;
  }
  p->last = done;
}

static char *
fixture_corpus (void)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", "vocab", "corpus.txt", NULL);
}

static void
test_progress (void)
{
  g_autoptr(GError) error = NULL;
  ProgressLog log = { 0 };
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, STSIM_VOCAB_WORDPIECE, 2000);
  o.progress = log_progress;
  o.progress_data = &log;
  g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
  g_autofree char *corpus = fixture_corpus ();
  g_assert_true (stsim_vocab_trainer_add_file (t, corpus, &error));
  g_assert_true (stsim_vocab_trainer_train (t, &error));
  g_assert_no_error (error);
  /* 1,500 lines: after line 1,024 and at the end; merges: every 256 and
   * at the end. */
  g_assert_true (log.read_done);
  g_assert_cmpuint (log.read_calls, ==, 2);
  g_assert_cmpuint (stsim_vocab_trainer_n_merges (t), >=, 2000 - stsim_vocab_trainer_n_initial (t));
  g_assert_cmpuint (log.merge_calls, ==, stsim_vocab_trainer_n_merges (t) / 256 + 1);
  g_assert_cmpuint (stsim_vocab_trainer_n_tokens (t), ==, 2000);
}

/* ---- the trained folders in the tokenizer, encoders and tools ----------- */

static char *
train_folder (StsimVocabKind kind, gboolean lowercase, gint64 size, const char *tmp, const char *name)
{
  g_autoptr(GError) error = NULL;
  StsimVocabOptions o;
  stsim_vocab_options_init (&o, kind, size);
  o.lowercase = lowercase;
  g_autoptr(StsimVocabTrainer) t = stsim_vocab_trainer_new (&o);
  g_autofree char *corpus = fixture_corpus ();
  g_assert_true (stsim_vocab_trainer_add_file (t, corpus, &error));
  g_assert_true (stsim_vocab_trainer_train (t, &error));
  char *dir = g_build_filename (tmp, name, NULL);
  g_assert_true (stsim_vocab_trainer_save (t, dir, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stsim_vocab_trainer_n_tokens (t), ==, size);
  return dir;
}

/* Every id of @text is in range and the pieces spell the input back. */
static void
assert_encodes (StsimTokenizer *tok, const char *text, const char *spelled)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (stsim_tokenizer_encode (tok, text, -1, 0, ids, &error));
  g_assert_no_error (error);
  g_autoptr(GString) s = g_string_new (NULL);
  for (guint i = 1; i + 1 < ids->len; i++) {
    gint32 id = g_array_index (ids, gint32, i);
    g_assert_cmpint (id, !=, stsim_tokenizer_unk_id (tok));
    const char *piece = stsim_tokenizer_id_to_token (tok, id);
    g_assert_nonnull (piece);
    g_string_append (s, g_str_has_prefix (piece, "##") ? piece + 2 : piece);
  }
  g_assert_cmpstr (s->str, ==, spelled);
}

static void
test_tokenizer_loads (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("test-vocab-XXXXXX", &error);
  g_autofree char *wp = train_folder (STSIM_VOCAB_WORDPIECE, TRUE, 600, tmp, "wp");
  g_autofree char *cased = train_folder (STSIM_VOCAB_WORDPIECE, FALSE, 600, tmp, "cased");
  g_autofree char *bpe = train_folder (STSIM_VOCAB_BPE, FALSE, 600, tmp, "bpe");

  g_autoptr(StsimTokenizer) t = stsim_tokenizer_new_from_dir (wp, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stsim_tokenizer_get_kind (t), ==, STSIM_TOKENIZER_WORDPIECE);
  g_assert_cmpint (stsim_tokenizer_vocab_size (t), ==, 600);
  g_assert_cmpint (stsim_tokenizer_pad_id (t), ==, 0);
  g_assert_cmpint (stsim_tokenizer_unk_id (t), ==, 1);
  g_assert_cmpint (stsim_tokenizer_cls_id (t), ==, 2);
  g_assert_cmpint (stsim_tokenizer_sep_id (t), ==, 3);
  g_assert_cmpint (stsim_tokenizer_mask_id (t), ==, 4);
  assert_encodes (t, "Kàrus TONG, plàck!", "karustong,plack!");

  /* tokenizer_config.json says do_lower_case false: case and accents stay. */
  g_autoptr(StsimTokenizer) c = stsim_tokenizer_new_from_dir (cased, &error);
  g_assert_no_error (error);
  assert_encodes (c, "Kàrus TONG", "KàrusTONG");

  g_autoptr(StsimTokenizer) b = stsim_tokenizer_new_from_dir (bpe, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stsim_tokenizer_get_kind (b), ==, STSIM_TOKENIZER_BPE);
  g_assert_cmpint (stsim_tokenizer_vocab_size (b), ==, 600);
  g_assert_cmpint (stsim_tokenizer_cls_id (b), ==, 0);
  g_assert_cmpint (stsim_tokenizer_pad_id (b), ==, 1);
  g_assert_cmpint (stsim_tokenizer_sep_id (b), ==, 2);
  g_assert_cmpint (stsim_tokenizer_unk_id (b), ==, 3);
  g_assert_cmpint (stsim_tokenizer_mask_id (b), ==, 4);
  /* Byte level: any text, even unseen characters, encodes without <unk>. */
  assert_encodes (b, "kàrus tong", "k\u00c3\u0142rus\u0120tong");
  assert_encodes (b, "\u2603", "\u00e2\u013a\u0125");
  stsim_test_remove_tree (tmp);
}

/* A tiny fresh model of @arch over @vocab_size tokens. */
static char *
write_config (const char *tmp, const char *arch, int vocab_size)
{
  g_autofree char *json = g_strdup_printf (
    "{\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": 16, \"num_hidden_layers\": 1, "
    "\"num_attention_heads\": 2, \"intermediate_size\": 32, \"max_position_embeddings\": 40, "
    "\"type_vocab_size\": %d, \"pad_token_id\": %d}", arch, vocab_size,
    g_str_equal (arch, "bert") ? 2 : 1, g_str_equal (arch, "bert") ? 0 : 1);
  g_autofree char *name = g_strdup_printf ("%s-%d.json", arch, vocab_size);
  char *path = g_build_filename (tmp, name, NULL);
  g_assert_true (g_file_set_contents (path, json, -1, NULL));
  return path;
}

static StsimComponent *
make_encoder (const char *name, const char *config, const char *vocab, GError **error)
{
  const StsimRegistryEntry *e = stsim_registry_lookup (reg, STSIM_KIND_ENCODER, name);
  g_assert_nonnull (e);
  g_autoptr(StsimContext) ctx = stsim_context_new (g_get_tmp_dir (), 42, 1);
  g_autoptr(StsimParams) params = stsim_params_new (e->desc->params);
  if (!stsim_params_set (params, "config", config, error) || !stsim_params_set (params, "vocab", vocab, error)
      || !stsim_params_set (params, "pooler", "avg", error) || !stsim_params_finish (params, error))
    return NULL;
  return stsim_component_new (e->desc, "encoder.main", g_steal_pointer (&params), ctx, error);
}

/* Runs stsim-encode on @model with two sentences; returns its stdout. */
static char *
run_encode_tool (const char *model)
{
  const char *tool = g_getenv ("STSIM_ENCODE");
  if (tool == NULL)
    return NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                               &error, tool, "--model", model, "--pooler", "avg", NULL);
  g_assert_no_error (error);
  char *out = NULL;
  g_assert_true (g_subprocess_communicate_utf8 (p, "a man\nthe house.\n", NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (p));
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 0);
  return out;
}

static void
check_encoder (const char *tmp, const char *component, const char *arch, const char *vocab, int size)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *config = write_config (tmp, arch, size);
  g_autoptr(StsimComponent) enc = make_encoder (component, config, vocab, &error);
  g_assert_no_error (error);
  const char *sents[] = { "a man", "the house." };
  float v[2 * 16];
  g_assert_true (stsim_encoder_encode (enc, sents, 2, v, &error));
  g_assert_no_error (error);

  /* Saved as a checkpoint, it loads again and stsim-encode reads it. */
  StsimModel *m = stsim_encoder_model (enc, &error);
  g_assert_no_error (error);
  g_autofree char *saved = g_build_filename (tmp, component, NULL);
  g_assert_true (stsim_model_save (m, saved, &error));
  g_assert_no_error (error);
  g_autoptr(StsimModel) back = stsim_model_load (saved, STSIM_MODEL_FROZEN, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (stsim_tokenizer_vocab_size (stsim_model_get_tokenizer (back)), ==, size);
  g_autofree char *out = run_encode_tool (saved);
  if (out != NULL) {
    g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 3);
    g_auto(GStrv) x = g_strsplit (lines[0], " ", -1);
    g_assert_cmpuint (g_strv_length (x), ==, 16);
    g_assert_cmpfloat_with_epsilon (g_ascii_strtod (x[0], NULL), v[0], 1e-5);
  }

  /* A config whose vocab_size is smaller than the vocabulary is refused. */
  g_autofree char *small = write_config (tmp, arch, size - 1);
  g_autoptr(StsimComponent) bad = make_encoder (component, small, vocab, &error);
  g_assert_null (bad);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "vocab_size"));
}

static void
test_encoders_load (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("test-vocab-XXXXXX", &error);
  g_autofree char *wp = train_folder (STSIM_VOCAB_WORDPIECE, TRUE, 500, tmp, "wp");
  g_autofree char *bpe = train_folder (STSIM_VOCAB_BPE, FALSE, 500, tmp, "bpe");
  check_encoder (tmp, "bert", "bert", wp, 500);
  check_encoder (tmp, "roberta", "roberta", bpe, 500);
  stsim_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  reg = stsim_registry_new ();
  g_autoptr(GError) error = NULL;
  stsim_registry_scan_path (reg, g_getenv ("STSIM_PLUGIN_PATH"), &error);
  g_assert_no_error (error);
  g_test_add_func ("/vocab/wordpiece-by-hand", test_wordpiece_by_hand);
  g_test_add_func ("/vocab/limit-alphabet", test_limit_alphabet);
  g_test_add_func ("/vocab/bpe-by-hand", test_bpe_by_hand);
  g_test_add_func ("/vocab/errors", test_errors);
  g_test_add_func ("/vocab/progress", test_progress);
  g_test_add_func ("/vocab/tokenizer-loads", test_tokenizer_loads);
  g_test_add_func ("/vocab/encoders-load", test_encoders_load);
  int rc = g_test_run ();
  stsim_registry_free (reg);
  return rc;
}
