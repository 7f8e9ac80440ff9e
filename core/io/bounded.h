/* bounded.h: the core's name for the public stsim/stsim-bounded.h. */
#pragma once
#include "stsim/stsim-bounded.h"
