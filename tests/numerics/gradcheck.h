/* gradcheck.h: finite-difference gradient checking against independent
 * double-precision reference implementations.
 *
 * For an op f with inputs x_i and a fixed random upstream gradient G, the
 * scalar L(x) = Σ G ⊙ f_ref(x) is evaluated in DOUBLE with a naive
 * reference f_ref written in the test (not the library's kernels), and
 * dL/dx is taken by central differences (h = 1e-6, truncation error ~1e-12).
 * The library's float backward, seeded with G, must match within the stated
 * bound, relative to the largest gradient magnitude of that input. The float
 * forward must match f_ref too. */
#pragma once
#include <glib.h>
#include <math.h>
#include <stsim/stsim.h>

#define GC_MAX_IN 4

typedef struct {
  int      n_in;
  int      ndim[GC_MAX_IN];
  gint64   shape[GC_MAX_IN][4];
  gboolean grad[GC_MAX_IN];
  double  *x[GC_MAX_IN];      /* values (double copies of float-exact numbers) */
  gint64   numel[GC_MAX_IN];
} GcInputs;

typedef StsimTensor *(*GcBuild) (StsimTape *tape, StsimTensor **in, gpointer user);
/* Writes f_ref(x) into out (out_numel doubles). */
typedef void (*GcRef) (double *const *x, double *out, gpointer user);

void     gc_inputs_init (GcInputs *in);
/* Adds an input with values uniform in [lo, hi] rounded to float. Returns its index. */
int      gc_add (GcInputs *in, int ndim, const gint64 *shape, gboolean grad, double lo, double hi, guint64 seed);
void     gc_inputs_clear (GcInputs *in);
/* Runs the check; prints one line; returns TRUE if within bounds. */
gboolean gc_check (const char *name, GcInputs *in, GcBuild build, GcRef ref, gpointer user,
                   double fwd_bound, double grad_bound);

double   gc_gelu (double x);
