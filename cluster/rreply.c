/* rreply.c - hiredis reply objects in a per-connection arena (rreply.h).
 *
 * Each object is a small header (its arena) followed by a redisReply, and
 * for a string its bytes plus a NUL, for an array its element pointers, in
 * one bump allocation. The arena keeps its first chunk for good and drops
 * any further (bigger) chunk when it is reset, so a large reply (a restore
 * read, the INFO text) does not pin memory. */
#include "rreply.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define RREPLY_CHUNK 16384

struct rchunk {
	struct rchunk *next;
	size_t cap, used;
	_Alignas(16) char data[];
};

struct rreply_arena {
	struct rchunk *first;        /* kept across resets */
	struct rchunk *cur;          /* where allocations go */
	struct rchunk *extra;        /* further chunks, freed at reset */
	void *root;                  /* the reply being built or in use */
};

struct rhdr {
	struct rreply_arena *a;
	uint64_t pad;                /* keeps the redisReply 16-aligned */
};

static struct rchunk *chunk_new(size_t cap)
{
	struct rchunk *ch = xmalloc(sizeof(*ch) + cap);

	ch->next = NULL;
	ch->cap = cap;
	ch->used = 0;
	return ch;
}

static void arena_reset(struct rreply_arena *a)
{
	while (a->extra) {
		struct rchunk *n = a->extra->next;
		free(a->extra);
		a->extra = n;
	}
	a->first->used = 0;
	a->cur = a->first;
	a->root = NULL;
}

static void *arena_alloc(struct rreply_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (a->cur->cap - a->cur->used < n) {
		size_t cap = a->cur->cap * 2;
		if (cap < n)
			cap = n;
		struct rchunk *ch = chunk_new(cap);
		ch->next = a->extra;
		a->extra = ch;
		a->cur = ch;
	}
	void *p = a->cur->data + a->cur->used;
	a->cur->used += n;
	return p;
}

/* A zeroed redisReply with extra bytes after it; hooked into its parent
 * array like hiredis's own functions do. */
static redisReply *obj_new(const redisReadTask *task, int type, size_t extra)
{
	struct rreply_arena *a = task->privdata;

	if (!task->parent) {
		/* a new reply: the previous one was freed (see rreply.h) */
		arena_reset(a);
	}
	struct rhdr *h = arena_alloc(a, sizeof(*h) + sizeof(redisReply) + extra);
	h->a = a;
	redisReply *r = (redisReply *)(h + 1);
	memset(r, 0, sizeof(*r));
	r->type = type;
	if (task->parent) {
		redisReply *parent = task->parent->obj;
		parent->element[task->idx] = r;
	} else {
		a->root = r;
	}
	return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
	redisReply *r = obj_new(task, task->type, len + 1);
	char *s = (char *)(r + 1);

	if (len)
		memcpy(s, str, len);
	s[len] = '\0';
	r->str = s;
	r->len = len;
	return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
	size_t n = elements > 0 ? (size_t)elements : 0;
	redisReply *r = obj_new(task, REDIS_REPLY_ARRAY, n * sizeof(redisReply *));

	r->elements = n;
	r->element = n ? (redisReply **)(void *)(r + 1) : NULL;
	if (n)
		memset(r->element, 0, n * sizeof(redisReply *));
	return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
	redisReply *r = obj_new(task, REDIS_REPLY_INTEGER, 0);

	r->integer = value;
	return r;
}

static void *create_nil(const redisReadTask *task)
{
	return obj_new(task, REDIS_REPLY_NIL, 0);
}

/* hiredis frees the root of a reply (after its callback, on a protocol
 * error, when the reader goes): that releases the whole reply. Freeing an
 * inner object (hiredis does not) releases nothing until its root goes. */
static void free_object(void *obj)
{
	if (!obj)
		return;
	struct rhdr *h = (struct rhdr *)obj - 1;
	struct rreply_arena *a = h->a;
	if (a->root == obj)
		arena_reset(a);
}

static redisReplyObjectFunctions rreply_fns = {
	create_string, create_array, create_integer, create_nil, free_object,
};

struct rreply_arena *rreply_arena_new(void)
{
	struct rreply_arena *a = xcalloc(1, sizeof(*a));

	a->first = a->cur = chunk_new(RREPLY_CHUNK);
	return a;
}

void rreply_arena_free(struct rreply_arena **ap)
{
	struct rreply_arena *a = *ap;

	if (!a)
		return;
	*ap = NULL;
	arena_reset(a);
	free(a->first);
	free(a);
}

void rreply_attach(redisReader *r, struct rreply_arena *a)
{
	/* A reply half-built with the default functions would be freed with
	 * ours: only before the first byte is read. */
	r->fn = &rreply_fns;
	r->privdata = a;
}

size_t rreply_arena_bytes(const struct rreply_arena *a)
{
	size_t n = a->first->cap;

	for (const struct rchunk *ch = a->extra; ch; ch = ch->next)
		n += ch->cap;
	return n;
}
