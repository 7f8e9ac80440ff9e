#include "stsim/stsim-error.h"

G_DEFINE_QUARK (stsim-error-quark, stsim_error)

const char *
stsim_error_code_name (StsimErrorCode code)
{
  switch (code) {
  case STSIM_ERROR_FAILED: return "failed";
  case STSIM_ERROR_INVALID: return "invalid";
  case STSIM_ERROR_IO: return "io";
  case STSIM_ERROR_PARSE: return "parse";
  case STSIM_ERROR_NOT_FOUND: return "not-found";
  case STSIM_ERROR_PLUGIN: return "plugin";
  case STSIM_ERROR_RECIPE: return "recipe";
  case STSIM_ERROR_CHECKPOINT: return "checkpoint";
  case STSIM_ERROR_DATA: return "data";
  case STSIM_ERROR_NUMERIC: return "numeric";
  case STSIM_ERROR_ENCODING: return "encoding";
  case STSIM_ERROR_UNSUPPORTED: return "unsupported";
  }
  return "unknown";
}
