/* roberta.c: the `roberta` encoder component: RoBERTa and distilroberta
 * checkpoints in Hugging Face layout (method.md §1.3: positions from
 * pad_token_id + 1, one token type, byte-level BPE). The network is the
 * shared core/model implementation (stsim-model.h); this file only
 * registers it. */
#include <stsim/stsim.h>
#include <stsim/stsim-model-encoder.h>

static gpointer
roberta_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  return stsim_model_encoder_create (params, ctx, STSIM_ARCH_ROBERTA, error);
}

static const StsimComponentDesc roberta_desc = {
  .kind = STSIM_KIND_ENCODER, .name = "roberta",
  .summary = "RoBERTa / distilroberta encoder from a Hugging Face folder (or fresh from a config.json); trainable",
  .params = stsim_model_encoder_params, .create = roberta_create, .destroy = stsim_model_encoder_destroy,
  STSIM_VTABLE (stsim_model_encoder_vtable),
};

STSIM_PLUGIN_DEFINE ("roberta", "0.1.0", "MIT",
                     "RoBERTa sentence encoder (HF checkpoints in and out)",
                     "@article{liu2019roberta,\n"
                     "  title = {{RoBERTa}: A Robustly Optimized {BERT} Pretraining Approach},\n"
                     "  author = {Liu, Yinhan and Ott, Myle and Goyal, Naman and Du, Jingfei and Joshi, Mandar and "
                     "Chen, Danqi and Levy, Omer and Lewis, Mike and Zettlemoyer, Luke and Stoyanov, Veselin},\n"
                     "  journal = {arXiv:1907.11692},\n  year = {2019}\n}\n",
                     &roberta_desc)
