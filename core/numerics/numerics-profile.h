/* numerics-profile.h: the core's name for the public stsim/stsim-profile.h. */
#pragma once
#include "stsim/stsim-profile.h"
