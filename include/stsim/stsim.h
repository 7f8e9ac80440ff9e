/* stsim.h: the plugin umbrella header. A plugin author includes this and
 * nothing else of stsim (docs/plugin-guide.md): the plugin ABI, parameters,
 * tensors and autograd, the model, tokenizers, the training step objectives
 * see, and the evaluation helpers. It does not include the registry, the
 * recipe or the trainer (stsim-registry.h, stsim-recipe.h, stsim-train.h):
 * tools that load plugins and run recipes include those explicitly. */
#pragma once
#include <stsim/stsim-version.h>
#include "stsim-export.h"
#include "stsim-error.h"
#include "stsim-params.h"
#include "stsim-plugin.h"
#include "stsim-tokenizer.h"
#include "stsim-sts.h"
#include "stsim-transfer.h"
#include "stsim-tensor.h"
#include "stsim-autograd.h"
#include "stsim-optim.h"
#include "stsim-rng.h"
#include "stsim-model.h"
#include "stsim-train-step.h"
