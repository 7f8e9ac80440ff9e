/* hello-plugin.c: a one-file plugin built OUTSIDE the stsim tree by
 * test-sdk-install.sh, against the installed headers and stsim.pc only
 * (`cc ... $(pkg-config --cflags --libs stsim)`). One encoder, `sdk-hello`:
 * a sentence becomes (number of bytes, number of spaces + 1), L2-normalised. */
#include <math.h>
#include <string.h>

#include <stsim/stsim.h>

#if !STSIM_CHECK_VERSION(0, 1, 0)
#error "stsim-version.h is missing or too old"
#endif

static const StsimParamSpec hello_params[] = {
  { "scale", STSIM_PARAM_DOUBLE, "1", .min = 0.001, .max = 1000, .blurb = "multiplies the word count" },
  { NULL }
};

static gpointer
hello_create (const StsimParams *params, StsimContext *ctx, GError **error)
{
  double *scale = g_new (double, 1);
  *scale = stsim_params_get_double (params, "scale");
  return scale;
}

static gsize
hello_dim (gpointer state)
{
  return 2;
}

static gboolean
hello_encode (gpointer state, const char *const *sentences, gsize n, float *out, GError **error)
{
  for (gsize i = 0; i < n; i++) {
    double len = (double) strlen (sentences[i]), words = 1;
    for (const char *p = sentences[i]; *p; p++)
      words += *p == ' ';
    words *= *(double *) state;
    double norm = sqrt (len * len + words * words);
    out[2 * i] = (float) (norm > 0 ? len / norm : 0);
    out[2 * i + 1] = (float) (norm > 0 ? words / norm : 0);
  }
  return TRUE;
}

static const StsimEncoderVTable hello_vtable = { .dim = hello_dim, .encode = hello_encode };

static const StsimComponentDesc hello_encoder = {
  .kind = STSIM_KIND_ENCODER, .name = "sdk-hello",
  .summary = "length and word count (an out-of-tree SDK test plugin)",
  .params = hello_params, .create = hello_create, .destroy = g_free,
  STSIM_VTABLE (hello_vtable),
};

STSIM_PLUGIN_DEFINE ("sdk-hello", STSIM_VERSION_STRING, "MIT", "built against the installed stsim SDK", NULL,
                     &hello_encoder)
