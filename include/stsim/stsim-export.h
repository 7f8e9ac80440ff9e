/* stsim-export.h: STSIM_API, the mark of libstsim's public functions.
 *
 * libstsim is compiled with -fvisibility=hidden (meson's
 * gnu_symbol_visibility : 'hidden') and with STSIM_COMPILATION defined, so
 * only declarations marked STSIM_API in the installed headers are exported;
 * every other function of the library is internal and cannot be linked
 * against. tests/sdk/test-boundary.sh checks that the two sets agree. For code
 * that uses the library the mark is empty. */
#pragma once

#if defined(STSIM_COMPILATION) && defined(__GNUC__)
#define STSIM_API __attribute__ ((visibility ("default")))
#else
#define STSIM_API
#endif
