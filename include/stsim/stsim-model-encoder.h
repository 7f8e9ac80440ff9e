/* stsim-model-encoder.h: the encoder component that the `bert` and
 * `roberta` plugins register (one implementation, two thin plugins).
 *
 * A plugin declares a component with these pieces and an architecture:
 *
 *   static gpointer create (const StsimParams *p, StsimContext *ctx, GError **error)
 *   { return stsim_model_encoder_create (p, ctx, STSIM_ARCH_ROBERTA, error); }
 *   static const StsimComponentDesc desc = {
 *     .kind = STSIM_KIND_ENCODER, .name = "roberta", .summary = "...",
 *     .params = stsim_model_encoder_params, .create = create,
 *     .destroy = stsim_model_encoder_destroy, STSIM_VTABLE (stsim_model_encoder_vtable) };
 *
 * Parameters (stsim-inspect shows them with their docs): model, or config +
 * vocab for a fresh model; pooler, mlp, mlp_init, mlm_head, max_len, batch,
 * frozen, seed.
 */
#pragma once
#include "stsim-export.h"
#include "stsim-plugin.h"
#include "stsim-model.h"

G_BEGIN_DECLS

STSIM_API
extern const StsimParamSpec     stsim_model_encoder_params[];
STSIM_API
extern const StsimEncoderVTable stsim_model_encoder_vtable;

/* Loads (or creates) the model the parameters describe; the checkpoint's
 * model_type must be @arch. */
STSIM_API
gpointer stsim_model_encoder_create  (const StsimParams *params, StsimContext *ctx, StsimArch arch,
                                      GError **error);
STSIM_API
void     stsim_model_encoder_destroy (gpointer state);

G_END_DECLS
