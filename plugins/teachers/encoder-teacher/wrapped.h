/* wrapped.h: encoder-teacher over any encoder section of the recipe
 * (wrapped.c). Internal to the plugin. */
#pragma once
#include <stsim/stsim.h>

typedef struct _WrappedTeacher WrappedTeacher;

/* @label names an [encoder.*] section already in @ctx. */
WrappedTeacher *wrapped_teacher_new            (StsimContext *ctx, const char *label, gboolean use_cache,
                                                GError **error);
void            wrapped_teacher_free           (WrappedTeacher *w);
gboolean        wrapped_teacher_prepare_corpus (WrappedTeacher *w, const char *const *texts, gsize n,
                                                GError **error);
gboolean        wrapped_teacher_similarity     (WrappedTeacher *w, StsimTrainStep *step, float *sim,
                                                GError **error);
