/* bert.c: the `bert` and `distilbert` encoder components: BERT-family
 * checkpoints in Hugging Face layout (method.md §1.1, §1.2, §1.4). The
 * network, checkpoint I/O and batching are core/model (stsim-model.h); this
 * file only registers them. */
#include <stsim/stsim.h>
#include <stsim/stsim-model-encoder.h>

static gpointer
bert_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return stsim_model_encoder_create (params, ctx, STSIM_ARCH_BERT, error);
}

static gpointer
distilbert_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return stsim_model_encoder_create (params, ctx, STSIM_ARCH_DISTILBERT, error);
}

static const StsimComponentDesc bert_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "bert",
  .summary = "BERT encoder from a Hugging Face folder (or fresh from a config.json); trainable",
  .params = stsim_model_encoder_params, .create = bert_create, .destroy = stsim_model_encoder_destroy,
  STSIM_VTABLE (stsim_model_encoder_vtable),
};

static const StsimComponentDesc distilbert_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "distilbert",
  .summary = "DistilBERT encoder (6-layer distilled BERT, no token types) from a Hugging Face folder",
  .params = stsim_model_encoder_params, .create = distilbert_create, .destroy = stsim_model_encoder_destroy,
  STSIM_VTABLE (stsim_model_encoder_vtable),
};

STSIM_PLUGIN_DEFINE ("bert", "0.1.0", "MIT",
                     "BERT and DistilBERT sentence encoders (HF checkpoints in and out)",
                     "@inproceedings{devlin2019bert,\n"
                     "  title = {{BERT}: Pre-training of Deep Bidirectional Transformers for Language Understanding},\n"
                     "  author = {Devlin, Jacob and Chang, Ming-Wei and Lee, Kenton and Toutanova, Kristina},\n"
                     "  booktitle = {NAACL-HLT},\n  year = {2019}\n}\n",
                     &bert_desc, &distilbert_desc)
