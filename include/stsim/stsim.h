/* stsim.h: the umbrella header. A plugin author includes this and nothing else. */
#pragma once
#include "stsim-error.h"
#include "stsim-params.h"
#include "stsim-plugin.h"
#include "stsim-tokenizer.h"
