/* train-recipe.c: what [train] asks of the rest of a recipe.
 *
 * One pooler: the trained encoder's `pooler` says how token states become the
 * sentence vector, at evaluation and in training alike. In training, `cls`
 * and `cls_before_pooler` both give the first token's last hidden state h to
 * the head; `head = mlp` is SimCSE's MLP, which `cls` keeps at evaluation and
 * `cls_before_pooler` drops (docs/training.md, "Pooling"). The old
 * `[train] pooler` is deprecated: it is still read, must agree with the
 * encoder's, and only decides for encoders that have no `pooler` parameter. */
#include "train/engine-private.h"

#include <string.h>

/* Whether an enabled teacher section refers to @label (it wraps that encoder). */
static gboolean
wrapped_by_teacher (const StsimRecipe *r, const char *label)
{
  for (guint i = 0; i < stsim_recipe_get_n_ordered (r); i++) {
    const StsimRecipeComponent *t = stsim_recipe_get_ordered (r, i);
    if (t->kind != STSIM_KIND_TEACHER)
      continue;
    for (const StsimParamSpec *s = stsim_params_get_specs (t->params); s && s->name; s++) {
      const char *const *refs = s->type == STSIM_PARAM_REFS ? stsim_params_get_refs (t->params, s->name, NULL) : NULL;
      for (guint j = 0; refs && refs[j]; j++)
        if (strcmp (refs[j], label) == 0)
          return TRUE;
    }
  }
  return FALSE;
}

/* The encoder section [train] trains, chosen as the trainer chooses: [train]
 * encoder, else the only enabled one that no teacher wraps (else the only
 * one); NULL when that is not decided here (the trainer reports it). */
static const StsimRecipeComponent *
trained_encoder (const StsimRecipe *r, const StsimTrainConfig *train)
{
  const char *label = train->encoder;
  const StsimRecipeComponent *found = NULL;
  guint count = 0;

  if (label) {
    const StsimRecipeComponent *c = stsim_recipe_lookup_component (r, label);
    return c && c->enabled && c->kind == STSIM_KIND_ENCODER ? c : NULL;
  }
  for (int skip_wrapped = 1; skip_wrapped >= 0 && count == 0; skip_wrapped--)
    for (guint i = 0; i < stsim_recipe_get_n_ordered (r); i++) {
      const StsimRecipeComponent *c = stsim_recipe_get_ordered (r, i);
      if (c->kind != STSIM_KIND_ENCODER || (skip_wrapped && wrapped_by_teacher (r, c->label)))
        continue;
      found = c;
      count++;
    }
  return count == 1 ? found : NULL;
}

/* The training pooling of an encoder pooler: the head adds the MLP of `cls`. */
static const char *
training_pooling (const char *encoder_pooler)
{
  return strcmp (encoder_pooler, "cls_before_pooler") == 0 ? "cls" : encoder_pooler;
}

void
stsim_train_check_recipe (StsimRecipe *r)
{
  const StsimParams *p = stsim_recipe_get_core (r, "train");
  StsimTrainConfig train;
  const StsimRecipeComponent *enc;
  const char *pooler;

  if (!p || stsim_recipe_count_kind (r, STSIM_KIND_OBJECTIVE) == 0 || !stsim_train_config_parse (p, &train, NULL))
    return;  /* a bad debug_nan_steps is reported when training starts */
  if (!(enc = trained_encoder (r, &train)) ||
      !stsim_param_specs_lookup (stsim_params_get_specs (enc->params), "pooler") ||
      !(pooler = stsim_params_get_string (enc->params, "pooler"))) {
    stsim_train_config_clear (&train);
    return;  /* an encoder without a pooler parameter: [train] pooler decides */
  }
  if (train.pooler && strcmp (train.pooler, training_pooling (pooler)) != 0)
    stsim_recipe_check_error (r, "train", "pooler",
                              "pooler = %s disagrees with [%s] pooler = %s: training would pool %s and evaluation %s. "
                              "The encoder's pooler now sets both (its cls and cls_before_pooler train on the first "
                              "token's state); remove [train] pooler and set [%s] pooler to the pooling you mean",
                              train.pooler, enc->label, pooler, train.pooler, pooler, enc->label);
  if (strcmp (pooler, "cls") == 0 && train.head != STSIM_HEAD_MLP)
    stsim_recipe_check_error (r, enc->label, "pooler",
                              "pooler = cls evaluates through the MLP (pooler.dense), which only [train] head = mlp "
                              "trains (head = %s here); use pooler = cls_before_pooler, or head = mlp",
                              train.head_name);
  stsim_train_config_clear (&train);
}

gboolean
stsim_engine_resolve_pooler (StsimEngine *e, GError **error)
{
  const char *legacy = e->cfg.pooler;

  if (stsim_encoder_has_eval_pooler (e->encoder)) {
    int pooler = 0;
    if (!stsim_encoder_eval_pooler (e->encoder, &pooler, error))
      return FALSE;
    e->pooler = (StsimPooler) pooler;
    if (e->pooler == STSIM_POOL_CLS)
      e->pooler = STSIM_POOL_CLS_BEFORE_POOLER;  /* h; the head adds the MLP */
    return TRUE;
  }
  if (!legacy || strcmp (legacy, "cls") == 0) {
    e->pooler = STSIM_POOL_CLS_BEFORE_POOLER;
    return TRUE;
  }
  if (!stsim_pooler_from_name (legacy, &e->pooler)) {
    g_set_error (error, STSIM_ERROR, STSIM_ERROR_RECIPE, "[train] pooler = %s is unknown", legacy);
    return FALSE;
  }
  return TRUE;
}
