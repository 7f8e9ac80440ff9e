/* stsim.h: the umbrella header. A plugin author includes this and nothing
 * else of stsim (docs/plugin-guide.md). It also pulls in stsim-recipe.h and
 * stsim-registry.h, through stsim-train.h; a plugin needs neither. */
#pragma once
#include <stsim/stsim-version.h>
#include "stsim-error.h"
#include "stsim-params.h"
#include "stsim-plugin.h"
#include "stsim-tokenizer.h"
#include "stsim-eval.h"
#include "stsim-transfer.h"
#include "stsim-tensor.h"
#include "stsim-autograd.h"
#include "stsim-optim.h"
#include "stsim-rng.h"
#include "stsim-train.h"
