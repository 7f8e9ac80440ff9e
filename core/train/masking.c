/* masking.c: BERT's 80/10/10 token corruption (method.md §3.9, §4.2 step 2),
 * shared by the mlm objective and DiffCSE's generator input. */
#include "stsim/stsim-train.h"

gsize
stsim_mask_tokens (StsimTokenizer *tok, const StsimMaskingConfig *config, StsimRng *rng,
                   const gint32 *ids, const gint32 *lengths, gsize n_rows, gsize width,
                   gint32 *out_ids, gint32 *labels)
{
  g_return_val_if_fail (tok != NULL && config != NULL && rng != NULL, 0);
  g_return_val_if_fail (ids != NULL && lengths != NULL && out_ids != NULL && labels != NULL, 0);

  const gint32 mask_id = stsim_tokenizer_mask_id (tok);
  const gint64 vocab = stsim_tokenizer_vocab_size (tok);
  /* Thresholds on one uniform each; the replacement split is conditional on
   * selection: P(mask | selected) = mask_prob, P(random | selected) =
   * random_prob, unchanged otherwise (HF draws 0.8, then 0.5 of the rest). */
  const double p_sel = config->ratio;
  const double p_mask = config->mask_prob;
  const double p_rand = config->random_prob;
  gsize n_selected = 0;

  for (gsize r = 0; r < n_rows; r++) {
    const gint32 len = MIN ((gsize) MAX (lengths[r], 0), width);
    for (gsize k = 0; k < width; k++) {
      const gsize i = r * width + k;
      out_ids[i] = ids[i];
      labels[i] = -100;
      if ((gint32) k >= len || stsim_tokenizer_is_special (tok, ids[i]))
        continue;
      /* Always three draws per maskable position: the stream position then
       * depends only on the batch, never on earlier outcomes. */
      const double u_sel = stsim_rng_uniform_double (rng);
      const double u_kind = stsim_rng_uniform_double (rng);
      const gint64 random_id = stsim_rng_range (rng, 0, vocab);
      if (u_sel >= p_sel)
        continue;
      n_selected++;
      labels[i] = ids[i];
      if (u_kind < p_mask)
        out_ids[i] = mask_id;
      else if (u_kind < p_mask + p_rand)
        out_ids[i] = (gint32) random_id;
    }
  }
  return n_selected;
}
