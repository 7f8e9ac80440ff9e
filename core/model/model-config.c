/* model-config.c: config.json of BERT, RoBERTa and DistilBERT checkpoints
 * (method.md §1.2-1.4), pooler names, and config.json for saving. */
#include <math.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "stsim/stsim-model.h"
#include "model-private.h"
#include "base/util.h"
#include "io/bounded.h"

const char *
stsim_arch_name (StsimArch arch)
{
  switch (arch) {
  case STSIM_ARCH_BERT: return "bert";
  case STSIM_ARCH_ROBERTA: return "roberta";
  case STSIM_ARCH_DISTILBERT: return "distilbert";
  }
  return "unknown";
}

const char *
stsim_model_arch_prefix (StsimArch arch)
{
  switch (arch) {
  case STSIM_ARCH_BERT: return "bert.";
  case STSIM_ARCH_ROBERTA: return "roberta.";
  case STSIM_ARCH_DISTILBERT: return "distilbert.";
  }
  return "";
}

static const char *const pooler_names[] = {
  [STSIM_POOL_CLS] = "cls",
  [STSIM_POOL_CLS_BEFORE_POOLER] = "cls_before_pooler",
  [STSIM_POOL_AVG] = "avg",
  [STSIM_POOL_AVG_FIRST_LAST] = "avg_first_last",
  [STSIM_POOL_AVG_TOP2] = "avg_top2",
};

const char *
stsim_pooler_name (StsimPooler pooler)
{
  if ((guint) pooler >= G_N_ELEMENTS (pooler_names))
    return NULL;
  return pooler_names[pooler];
}

gboolean
stsim_pooler_from_name (const char *name, StsimPooler *out)
{
  g_return_val_if_fail (name != NULL, FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (pooler_names); i++)
    if (strcmp (name, pooler_names[i]) == 0) {
      if (out)
        *out = (StsimPooler) i;
      return TRUE;
    }
  return FALSE;
}

void
stsim_model_config_init (StsimModelConfig *config, StsimArch arch)
{
  g_return_if_fail (config != NULL);
  memset (config, 0, sizeof *config);
  config->arch = arch;
  config->hidden_size = 768;
  config->num_layers = 12;
  config->num_heads = 12;
  config->intermediate_size = 3072;
  config->hidden_dropout = 0.1;
  config->attention_dropout = 0.1;
  config->initializer_range = 0.02;
  switch (arch) {
  case STSIM_ARCH_BERT:
    config->vocab_size = 30522;
    config->max_position_embeddings = 512;
    config->type_vocab_size = 2;
    config->pad_token_id = 0;
    config->layer_norm_eps = 1e-12;
    break;
  case STSIM_ARCH_ROBERTA:
    config->vocab_size = 50265;
    config->max_position_embeddings = 514;
    config->type_vocab_size = 1;
    config->pad_token_id = 1;
    config->layer_norm_eps = 1e-5;
    break;
  case STSIM_ARCH_DISTILBERT:
    config->num_layers = 6;
    config->vocab_size = 30522;
    config->max_position_embeddings = 512;
    config->type_vocab_size = 0;
    config->pad_token_id = 0;
    config->layer_norm_eps = 1e-12;  /* hard-coded in HF's DistilBERT */
    break;
  }
}

/* ---- reading ----------------------------------------------------------- */

typedef struct {
  const char *file;
  JsonObject *obj;
} ConfigReader;

/* NULL when absent or JSON null (HF writes null for unset optional keys). */
static JsonNode *
cfg_member (ConfigReader *r, const char *key)
{
  JsonNode *n = json_object_get_member (r->obj, key);
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return NULL;
  return n;
}

static gboolean
cfg_int (ConfigReader *r, const char *key, gboolean required, int def, gint64 lo, gint64 hi,
         int *out, GError **error)
{
  JsonNode *n = cfg_member (r, key);
  if (n == NULL) {
    if (required) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                   "%s: required key \"%s\" is missing (an integer; see the HF config of the architecture)",
                   r->file, key);
      return FALSE;
    }
    *out = def;
    return TRUE;
  }
  gint64 v;
  GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t == G_TYPE_INT64)
    v = json_node_get_int (n);
  else if (t == G_TYPE_DOUBLE && json_node_get_double (n) == floor (json_node_get_double (n))
           && fabs (json_node_get_double (n)) < 1e15)
    v = (gint64) json_node_get_double (n);
  else {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: key \"%s\" must be an integer", r->file, key);
    return FALSE;
  }
  if (v < lo || v > hi) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "%s: key \"%s\" is %" G_GINT64_FORMAT ", outside [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                 r->file, key, v, lo, hi);
    return FALSE;
  }
  *out = (int) v;
  return TRUE;
}

static gboolean
cfg_double (ConfigReader *r, const char *key, double def, double lo, double hi, gboolean hi_open,
            double *out, GError **error)
{
  JsonNode *n = cfg_member (r, key);
  if (n == NULL) {
    *out = def;
    return TRUE;
  }
  GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: key \"%s\" must be a number", r->file, key);
    return FALSE;
  }
  double v = json_node_get_double (n);
  if (!isfinite (v) || v < lo || v > hi || (hi_open && v >= hi)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: key \"%s\" is %g, outside [%g, %g%s",
                 r->file, key, v, lo, hi, hi_open ? ")" : "]");
    return FALSE;
  }
  *out = v;
  return TRUE;
}

/* A string key that, when present, must equal one of the supported values. */
static gboolean
cfg_expect_string (ConfigReader *r, const char *key, const char *const *allowed, const char *why, GError **error)
{
  JsonNode *n = cfg_member (r, key);
  if (n == NULL)
    return TRUE;
  const char *v = JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
                    ? json_node_get_string (n) : NULL;
  if (v == NULL) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: key \"%s\" must be a string", r->file, key);
    return FALSE;
  }
  for (const char *const *a = allowed; *a; a++)
    if (strcmp (v, *a) == 0)
      return TRUE;
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "%s: key \"%s\" is \"%s\"; stsim supports only \"%s\" (%s)",
               r->file, key, v, allowed[0], why);
  return FALSE;
}

static gboolean
cfg_expect_bool (ConfigReader *r, const char *key, gboolean want, const char *why, GError **error)
{
  JsonNode *n = cfg_member (r, key);
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: key \"%s\" must be true or false", r->file, key);
    return FALSE;
  }
  if (json_node_get_boolean (n) != want) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED, "%s: key \"%s\" is %s; stsim supports only %s (%s)",
                 r->file, key, want ? "false" : "true", want ? "true" : "false", why);
    return FALSE;
  }
  return TRUE;
}

/* model_type, or for old configs without it the first "architectures" entry. */
static gboolean
cfg_arch (ConfigReader *r, StsimArch *arch, GError **error)
{
  static const struct { const char *type, *class_prefix; StsimArch arch; } known[] = {
    { "bert", "Bert", STSIM_ARCH_BERT },
    { "roberta", "Roberta", STSIM_ARCH_ROBERTA },
    { "distilbert", "DistilBert", STSIM_ARCH_DISTILBERT },
  };
  JsonNode *n = cfg_member (r, "model_type");
  if (n != NULL) {
    const char *v = JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
                      ? json_node_get_string (n) : NULL;
    if (v == NULL) {
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: key \"model_type\" must be a string", r->file);
      return FALSE;
    }
    for (guint i = 0; i < G_N_ELEMENTS (known); i++)
      if (strcmp (v, known[i].type) == 0) {
        *arch = known[i].arch;
        return TRUE;
      }
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_UNSUPPORTED,
                 "%s: model_type \"%s\" is not supported (stsim runs bert, roberta and distilbert)", r->file, v);
    return FALSE;
  }
  n = cfg_member (r, "architectures");
  if (n != NULL && JSON_NODE_HOLDS_ARRAY (n) && json_array_get_length (json_node_get_array (n)) > 0) {
    JsonNode *first = json_array_get_element (json_node_get_array (n), 0);
    const char *cls = JSON_NODE_HOLDS_VALUE (first) && json_node_get_value_type (first) == G_TYPE_STRING
                        ? json_node_get_string (first) : "";
    /* Longest prefix first: "DistilBert" must not match "Bert". */
    for (int i = G_N_ELEMENTS (known) - 1; i >= 0; i--)
      if (g_str_has_prefix (cls, known[i].class_prefix)) {
        *arch = known[i].arch;
        return TRUE;
      }
  }
  g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
               "%s: key \"model_type\" is missing (add \"model_type\": \"bert\", \"roberta\" or \"distilbert\")",
               r->file);
  return FALSE;
}

/* DistilBERT's keys into @c (stsim_model_config_init'ed). */
static gboolean
config_read_distilbert (ConfigReader *r, StsimModelConfig *c, GError **error)
{
  static const char *const gelu[] = { "gelu", NULL };
  const int big = 1 << 24;

  if (!cfg_int (r, "vocab_size", TRUE, 0, 1, big, &c->vocab_size, error)
      || !cfg_int (r, "dim", TRUE, 0, 1, big, &c->hidden_size, error)
      || !cfg_int (r, "n_layers", TRUE, 0, 1, 1024, &c->num_layers, error)
      || !cfg_int (r, "n_heads", TRUE, 0, 1, 4096, &c->num_heads, error)
      || !cfg_int (r, "hidden_dim", TRUE, 0, 1, big, &c->intermediate_size, error)
      || !cfg_int (r, "max_position_embeddings", TRUE, 0, 1, big, &c->max_position_embeddings, error)
      || !cfg_int (r, "pad_token_id", FALSE, 0, 0, big, &c->pad_token_id, error)
      || !cfg_double (r, "dropout", 0.1, 0, 1, TRUE, &c->hidden_dropout, error)
      || !cfg_double (r, "attention_dropout", 0.1, 0, 1, TRUE, &c->attention_dropout, error)
      || !cfg_double (r, "initializer_range", 0.02, 0, 10, FALSE, &c->initializer_range, error)
      || !cfg_expect_string (r, "activation", gelu, "the erf GELU", error)
      || !cfg_expect_bool (r, "sinusoidal_pos_embds", FALSE, "learned position embeddings", error))
    return FALSE;
  c->type_vocab_size = 0;
  c->layer_norm_eps = 1e-12;
  return TRUE;
}

/* BERT's and RoBERTa's keys into @c (stsim_model_config_init'ed). */
static gboolean
config_read_bert (ConfigReader *r, StsimArch arch, StsimModelConfig *c, GError **error)
{
  static const char *const gelu[] = { "gelu", NULL };
  static const char *const absolute[] = { "absolute", NULL };
  const int big = 1 << 24;

  if (!cfg_int (r, "vocab_size", TRUE, 0, 1, big, &c->vocab_size, error)
      || !cfg_int (r, "hidden_size", TRUE, 0, 1, big, &c->hidden_size, error)
      || !cfg_int (r, "num_hidden_layers", TRUE, 0, 1, 1024, &c->num_layers, error)
      || !cfg_int (r, "num_attention_heads", TRUE, 0, 1, 4096, &c->num_heads, error)
      || !cfg_int (r, "intermediate_size", TRUE, 0, 1, big, &c->intermediate_size, error)
      || !cfg_int (r, "max_position_embeddings", TRUE, 0, 1, big, &c->max_position_embeddings, error)
      /* HF's BertConfig/RobertaConfig defaults for the optional keys. */
      || !cfg_int (r, "type_vocab_size", FALSE, 2, 1, big, &c->type_vocab_size, error)
      || !cfg_int (r, "pad_token_id", FALSE, arch == STSIM_ARCH_ROBERTA ? 1 : 0, 0, big, &c->pad_token_id, error)
      || !cfg_double (r, "layer_norm_eps", 1e-12, 0, 1, FALSE, &c->layer_norm_eps, error)
      || !cfg_double (r, "hidden_dropout_prob", 0.1, 0, 1, TRUE, &c->hidden_dropout, error)
      || !cfg_double (r, "attention_probs_dropout_prob", 0.1, 0, 1, TRUE, &c->attention_dropout, error)
      || !cfg_double (r, "initializer_range", 0.02, 0, 10, FALSE, &c->initializer_range, error)
      || !cfg_expect_string (r, "hidden_act", gelu, "the erf GELU of method.md §1.1", error)
      || !cfg_expect_string (r, "position_embedding_type", absolute, "learned absolute positions", error))
    return FALSE;
  if (c->layer_norm_eps <= 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: key \"layer_norm_eps\" must be > 0", r->file);
    return FALSE;
  }
  return TRUE;
}

/* The keys that must agree with each other, after each was read. */
static gboolean
config_check_shape (const char *config_json, StsimArch arch, const StsimModelConfig *c, GError **error)
{
  const char *hkey = arch == STSIM_ARCH_DISTILBERT ? "dim" : "hidden_size";
  const char *nkey = arch == STSIM_ARCH_DISTILBERT ? "n_heads" : "num_attention_heads";
  if (c->hidden_size % c->num_heads != 0) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: \"%s\" %d is not a multiple of \"%s\" %d",
                 config_json, hkey, c->hidden_size, nkey, c->num_heads);
    return FALSE;
  }
  if (c->pad_token_id >= c->vocab_size) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID, "%s: \"pad_token_id\" %d is not below \"vocab_size\" %d",
                 config_json, c->pad_token_id, c->vocab_size);
    return FALSE;
  }
  if (arch == STSIM_ARCH_ROBERTA && c->max_position_embeddings <= c->pad_token_id + 1) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_INVALID,
                 "%s: \"max_position_embeddings\" %d leaves no position for tokens (RoBERTa positions start at "
                 "pad_token_id + 1 = %d)", config_json, c->max_position_embeddings, c->pad_token_id + 1);
    return FALSE;
  }
  return TRUE;
}

gboolean
stsim_model_config_load (const char *config_json, StsimModelConfig *config, GError **error)
{
  g_return_val_if_fail (config_json != NULL && config != NULL, FALSE);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  if (!stsim_json_load_file (parser, config_json, STSIM_LIMIT_JSON, &local)) {
    if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      g_set_error (error, STSIM_ERROR, STSIM_ERROR_NOT_FOUND,
                   "%s does not exist (a model folder needs config.json)", config_json);
    else
      g_set_error (error, STSIM_ERROR, local->domain == G_FILE_ERROR ? STSIM_ERROR_IO : STSIM_ERROR_PARSE,
                   "%s: %s", config_json, local->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_PARSE, "%s: expected a JSON object", config_json);
    return FALSE;
  }
  ConfigReader r = { config_json, json_node_get_object (root) };
  StsimModelConfig c;
  StsimArch arch;
  if (!cfg_arch (&r, &arch, error))
    return FALSE;
  stsim_model_config_init (&c, arch);
  if (!(arch == STSIM_ARCH_DISTILBERT ? config_read_distilbert (&r, &c, error) : config_read_bert (&r, arch, &c, error)))
    return FALSE;
  if (!cfg_expect_bool (&r, "tie_word_embeddings", TRUE, "the MLM decoder is the word-embedding matrix", error)
      || !cfg_expect_bool (&r, "is_decoder", FALSE, "encoders only", error)
      || !cfg_expect_bool (&r, "add_cross_attention", FALSE, "encoders only", error))
    return FALSE;
  if (!config_check_shape (config_json, arch, &c, error))
    return FALSE;
  *config = c;
  return TRUE;
}

/* ---- writing ----------------------------------------------------------- */

/* A flat JSON object in HF's save_pretrained style: sorted keys, two-space
 * indent. Values are preformatted JSON. */
typedef struct {
  const char *key;
  char       *value;
} JsonKv;

static int
kv_compare (const void *a, const void *b)
{
  return strcmp (((const JsonKv *) a)->key, ((const JsonKv *) b)->key);
}

static char *
json_double (double v)
{
  char *s = stsim_util_format_double (v);
  /* JSON needs a digit after a dot and accepts "1e-12" as it is; make an
   * integral value look like a float as Python's json does ("0.0"). */
  if (strpbrk (s, ".eEn") == NULL) {
    char *t = g_strconcat (s, ".0", NULL);
    g_free (s);
    return t;
  }
  return s;
}

char *
stsim_model_config_to_json (const StsimModelConfig *c, int bos_id, int eos_id)
{
  JsonKv kv[32];
  int n = 0;
#define KV_INT(k, v)    kv[n++] = (JsonKv) { k, g_strdup_printf ("%d", (int) (v)) }
#define KV_DBL(k, v)    kv[n++] = (JsonKv) { k, json_double (v) }
#define KV_RAW(k, v)    kv[n++] = (JsonKv) { k, g_strdup (v) }
  if (c->arch == STSIM_ARCH_DISTILBERT) {
    KV_RAW ("activation", "\"gelu\"");
    KV_RAW ("architectures", "[\n    \"DistilBertForMaskedLM\"\n  ]");
    KV_DBL ("attention_dropout", c->attention_dropout);
    KV_INT ("dim", c->hidden_size);
    KV_DBL ("dropout", c->hidden_dropout);
    KV_INT ("hidden_dim", c->intermediate_size);
    KV_DBL ("initializer_range", c->initializer_range);
    KV_INT ("max_position_embeddings", c->max_position_embeddings);
    KV_RAW ("model_type", "\"distilbert\"");
    KV_INT ("n_heads", c->num_heads);
    KV_INT ("n_layers", c->num_layers);
    KV_INT ("pad_token_id", c->pad_token_id);
    KV_DBL ("qa_dropout", 0.1);
    KV_DBL ("seq_classif_dropout", 0.2);
    KV_RAW ("sinusoidal_pos_embds", "false");
    KV_RAW ("tie_weights_", "true");
    KV_INT ("vocab_size", c->vocab_size);
  } else {
    gboolean rob = c->arch == STSIM_ARCH_ROBERTA;
    KV_RAW ("architectures", rob ? "[\n    \"RobertaForMaskedLM\"\n  ]" : "[\n    \"BertForMaskedLM\"\n  ]");
    KV_DBL ("attention_probs_dropout_prob", c->attention_dropout);
    if (rob && bos_id >= 0)
      KV_INT ("bos_token_id", bos_id);
    if (rob && eos_id >= 0)
      KV_INT ("eos_token_id", eos_id);
    KV_RAW ("hidden_act", "\"gelu\"");
    KV_DBL ("hidden_dropout_prob", c->hidden_dropout);
    KV_INT ("hidden_size", c->hidden_size);
    KV_DBL ("initializer_range", c->initializer_range);
    KV_INT ("intermediate_size", c->intermediate_size);
    KV_DBL ("layer_norm_eps", c->layer_norm_eps);
    KV_INT ("max_position_embeddings", c->max_position_embeddings);
    KV_RAW ("model_type", rob ? "\"roberta\"" : "\"bert\"");
    KV_INT ("num_attention_heads", c->num_heads);
    KV_INT ("num_hidden_layers", c->num_layers);
    KV_INT ("pad_token_id", c->pad_token_id);
    KV_RAW ("position_embedding_type", "\"absolute\"");
    KV_INT ("type_vocab_size", c->type_vocab_size);
    KV_INT ("vocab_size", c->vocab_size);
  }
  KV_RAW ("torch_dtype", "\"float32\"");
#undef KV_INT
#undef KV_DBL
#undef KV_RAW
  qsort (kv, n, sizeof kv[0], kv_compare);
  GString *s = g_string_new ("{\n");
  for (int i = 0; i < n; i++) {
    g_string_append_printf (s, "  \"%s\": %s%s\n", kv[i].key, kv[i].value, i + 1 < n ? "," : "");
    g_free (kv[i].value);
  }
  g_string_append (s, "}\n");
  return g_string_free (s, FALSE);
}
