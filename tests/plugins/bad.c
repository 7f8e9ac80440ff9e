/* bad.c: test-only plugins that the registry must reject, one per BAD_*
 * macro (see meson.build). Each is otherwise a valid one-encoder plugin. */
#include <stsim/stsim.h>

static gpointer create (const StsimParams *p, StsimContext *ctx, GError **error) { return g_new0 (int, 1); }
static gsize dim (gpointer state) { return 4; }
static gboolean
encode (gpointer state, const char *const *s, gsize n, float *out, GError **error)
{
  for (gsize i = 0; i < 4 * n; i++)
    out[i] = 1;
  return TRUE;
}
static const StsimEncoderVTable vtable = { .dim = dim, .encode = encode };

#if defined(BAD_PARAM_RANGE)
static const StsimParamSpec params[] = {
  { "p", STSIM_PARAM_DOUBLE, "5", .min = 0, .max = 1, .blurb = "default out of range" }, { NULL } };
#elif defined(BAD_PARAM_ENUM)
static const StsimParamSpec params[] = {
  { "mode", STSIM_PARAM_ENUM, "a", .blurb = "enum without choices" }, { NULL } };
#elif defined(BAD_PARAM_REQUIRED)
static const StsimParamSpec params[] = {
  { "p", STSIM_PARAM_INT, "3", .blurb = "required with a default", .flags = STSIM_PARAM_REQUIRED }, { NULL } };
#elif defined(BAD_PARAM_DUP)
static const StsimParamSpec params[] = {
  { "p", STSIM_PARAM_INT, "3", .blurb = "first" }, { "p", STSIM_PARAM_BOOL, "true", .blurb = "second" }, { NULL } };
#else
static const StsimParamSpec params[] = {
  { "p", STSIM_PARAM_INT, "3", .min = 0, .max = 10, .blurb = "fine" }, { NULL } };
#endif

#if defined(BAD_DUP_ACROSS)
#define ENCODER_NAME "test-hash"  /* the good plugin's encoder */
#elif defined(BAD_DUP_WITHIN)
#define ENCODER_NAME "twin"
#else
#define ENCODER_NAME "bad-encoder"
#endif

static const StsimComponentDesc encoder = {
  .kind = STSIM_KIND_ENCODER, .name = ENCODER_NAME, .summary = "an encoder", .params = params,
  .create = create, .destroy = g_free, STSIM_VTABLE (vtable) };

#if defined(BAD_MISSING_OP)
static const StsimEvaluatorVTable no_evaluate = { .evaluate = NULL };
static const StsimComponentDesc evaluator = {
  .kind = STSIM_KIND_EVALUATOR, .name = "no-op", .summary = "lacks evaluate()", .params = NULL,
  .create = create, .destroy = g_free, STSIM_VTABLE (no_evaluate) };
#define EXTRA , &evaluator
#elif defined(BAD_DUP_WITHIN)
#define EXTRA , &encoder
#else
#define EXTRA
#endif

#if defined(BAD_ABI)
G_MODULE_EXPORT const StsimPluginDesc *stsim_plugin_describe (void);
G_MODULE_EXPORT const StsimPluginDesc *
stsim_plugin_describe (void)
{
  static const StsimComponentDesc *const components[] = { &encoder, NULL };
  static const StsimPluginDesc desc = {
    .abi_major = STSIM_ABI_MAJOR + 99, .abi_minor = 0, .name = "test-bad-abi", .version = "1", .license = "MIT",
    .summary = "built for another ABI", .components = components };
  return &desc;
}
#elif defined(BAD_NO_SYMBOL)
G_MODULE_EXPORT int stsim_plugin_describe_misspelled (void);
G_MODULE_EXPORT int stsim_plugin_describe_misspelled (void) { return encoder.kind; }
#else
STSIM_PLUGIN_DEFINE (PLUGIN_NAME, "1", "MIT", "a plugin the registry rejects", NULL, &encoder EXTRA)
#endif
