/* xalloc.h - allocation that aborts on failure (like Redis's zmalloc: with
 * bounded queues this is simpler than a NOMEM path through every layer).
 * Shared by server/, storage/ and protocol/ users. */
#ifndef PARLEY_XALLOC_H
#define PARLEY_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);
/* Zeroed, at an address that is a multiple of align (a power of two, at
 * least sizeof(void *)); freed with free(). */
void *xcalloc_aligned(size_t align, size_t size);

#endif
