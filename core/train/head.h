/* head.h: the projection head z = head(h) of training (method.md §3.3,
 * §4.1): SimCSE's MLP (the model's own pooler.dense + tanh), DiffCSE's BN
 * projector (its own parameters and BatchNorm running statistics), or none.
 * Shared by the engine (forward, optimizer), the resume state (parameters,
 * statistics) and data-parallel runs (statistics broadcast). */
#pragma once
#include "stsim/stsim-model.h"
#include "stsim/stsim-autograd.h"
#include "stsim/stsim-safetensors.h"
#include "train/train-config.h"

G_BEGIN_DECLS

typedef struct _StsimHead StsimHead;

/* A head of @kind over @model (hidden size H). mlp borrows the model's
 * pooler.dense (an error naming @encoder_label when the model has none); bn
 * creates its parameters, initialised from (@seed, STSIM_RNG_STREAM_INIT) at
 * a fixed position, so the draws never depend on construction order. */
StsimHead       *stsim_head_new       (StsimHeadKind kind, StsimModel *model, guint64 seed,
                                       const char *encoder_label, GError **error);
void             stsim_head_free      (StsimHead *head);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StsimHead, stsim_head_free)

StsimHeadKind    stsim_head_get_kind  (const StsimHead *head);
/* z [N, H] from pooled h [N, H] on @tape (train mode: BN uses and updates
 * batch statistics; with several ranks they are summed over the ranks). */
StsimTensor     *stsim_head_forward   (StsimHead *head, StsimTape *tape, StsimTensor *h, GError **error);
/* The head's own trainable store (bn), or NULL (mlp trains the model's
 * pooler, none has no parameters). */
StsimParamStore *stsim_head_get_params (StsimHead *head);
/* Running statistics (bn): added to @w as head.bn{1,2}.running_{mean,var};
 * read back from @st (exact F32 blocks); broadcast from rank 0. No-ops for
 * heads without statistics. */
gboolean         stsim_head_save_state (StsimHead *head, StsimSafetensorsWriter *w, GError **error);
gboolean         stsim_head_load_state (StsimHead *head, StsimSafetensors *st, GError **error);
gboolean         stsim_head_bcast_state (StsimHead *head, GError **error);

G_END_DECLS
