/*
 * presfmt.h - the text of cluster presence entries (presence.h), pure:
 * no sockets, no server, so a unit test (tests/unit/test_presfmt.c) feeds
 * it bytes directly.
 *
 *   payload: "<count> <roomlen>:<room><userlen>:<user>" repeated, counts
 *            and lengths decimal (at most 4294967295), names raw bytes
 *   field:   "<roomlen>:<room><user>" (a node's hash field)
 */
#ifndef PARLEY_CLUSTER_PRESFMT_H
#define PARLEY_CLUSTER_PRESFMT_H

#include <stddef.h>
#include <stdint.h>

struct pbuf;

/* Appends one payload entry to b. */
void presfmt_add(struct pbuf *b, const char *room, size_t rl, const char *user, size_t ul,
		 uint32_t count);
/* Calls fn for each entry of p[0..n) in order. Returns 0, or -1 at the first
 * malformed byte (fn has seen the entries before it). */
typedef void presfmt_entry_fn(const char *room, size_t rl, const char *user, size_t ul,
			      uint32_t count, void *ud);
int presfmt_parse(const char *p, size_t n, presfmt_entry_fn *fn, void *ud);
/* Writes the field of (room, user) into dst; returns its length, or 0 when
 * it does not fit in cap. */
size_t presfmt_field(char *dst, size_t cap, const char *room, size_t rl, const char *user, size_t ul);
/* Splits a field; 0, or -1 when malformed. */
int presfmt_split(const char *f, size_t n, const char **room, size_t *rl, const char **user,
		  size_t *ul);

#endif
