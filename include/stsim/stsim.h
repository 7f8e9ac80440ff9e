/* stsim.h: the umbrella header. A plugin author includes this and nothing else. */
#pragma once
#include "stsim-error.h"
#include "stsim-params.h"
#include "stsim-plugin.h"
#include "stsim-tokenizer.h"
#include "stsim-eval.h"
#include "stsim-tensor.h"
#include "stsim-autograd.h"
#include "stsim-optim.h"
#include "stsim-rng.h"
#include "stsim-train.h"
