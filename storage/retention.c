/*
 * retention.c - pruning old history, run by the writer thread only.
 *
 * Per room, the store keeps at most retain_messages messages and nothing
 * older than retain_seconds (0 disables either rule). Every STORE__SWEEP_MS
 * the writer starts a sweep over its list of rooms. Each retention step
 * deletes at most STORE__PRUNE_CHUNK rows of one room in one transaction
 * (or only looks at up to STORE__PRUNE_ROOMS_STEP rooms with nothing to do)
 * and then returns to the writer loop, which writes any due batch before
 * the next step: pruning a large backlog never holds up messages for longer
 * than one small DELETE.
 *
 * Pruning always removes a prefix of a room's seqs: for age, the cut-off is
 * the highest seq among the oldest rows whose ts has expired (seq and ts
 * grow together; a clock stepping backwards can at worst keep or remove a
 * few rows early). rooms.last_seq is left alone, so seqs continue even when
 * every message of a room has expired.
 */
#include "store_int.h"

/* Runs a one-row, one-column query; *out = the value, or 0 for NULL. */
static int query_u64(sqlite3_stmt *st, uint64_t *out)
{
	int rc = sqlite3_step(st);
	*out = 0;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*out = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* Deletes at most one chunk of r's expired rows. Returns the number of
 * rows deleted, or -1 on a database error (rolled back). */
static int64_t prune_room(struct store *s, struct store__room *r, int64_t wall_ms)
{
	const uint64_t chunk = STORE__PRUNE_CHUNK;
	uint64_t first, upto = 0, aged;

	if (!r->w_id)
		return 0;
	sqlite3_bind_int64(s->st_min_seq, 1, r->w_id);
	if (query_u64(s->st_min_seq, &first) != SQLITE_OK)
		return -1;
	if (!first)
		return 0; /* no messages left */
	if (s->cfg.retain_messages && r->w_last_seq > s->cfg.retain_messages)
		upto = r->w_last_seq - s->cfg.retain_messages;
	if (upto > first + chunk - 1)
		upto = first + chunk - 1;
	if (s->cfg.retain_seconds) {
		sqlite3_bind_int64(s->st_age_max, 1, r->w_id);
		sqlite3_bind_int64(s->st_age_max, 2, (sqlite3_int64)chunk);
		sqlite3_bind_int64(s->st_age_max, 3,
				   wall_ms - (int64_t)s->cfg.retain_seconds * 1000);
		if (query_u64(s->st_age_max, &aged) != SQLITE_OK)
			return -1;
		if (aged > upto)
			upto = aged;
	}
	if (upto < first)
		return 0;

	if (sqlite3_step(s->st_begin) != SQLITE_DONE) {
		sqlite3_reset(s->st_begin);
		return -1;
	}
	sqlite3_reset(s->st_begin);
	sqlite3_bind_int64(s->st_prune, 1, r->w_id);
	sqlite3_bind_int64(s->st_prune, 2, (sqlite3_int64)upto);
	int rc = sqlite3_step(s->st_prune);
	sqlite3_reset(s->st_prune);
	int64_t n = sqlite3_changes(s->wdb);
	if (rc == SQLITE_DONE) {
		rc = sqlite3_step(s->st_commit);
		sqlite3_reset(s->st_commit);
	}
	if (rc != SQLITE_DONE) {
		if (!sqlite3_get_autocommit(s->wdb)) {
			sqlite3_step(s->st_rollback);
			sqlite3_reset(s->st_rollback);
		}
		return -1;
	}
	pthread_mutex_lock(&s->wlock);
	s->pruned += (uint64_t)n;
	pthread_mutex_unlock(&s->wlock);
	return n;
}

/* Starts a sweep over all rooms if one is due and none is running. */
void store__retention_sweep_due(struct store *s, int64_t now)
{
	if (s->sweep_active || now < s->next_sweep_ms)
		return;
	s->sweep_active = 1;
	s->sweep_cur = s->w_rooms;
	s->next_sweep_ms = now + STORE__SWEEP_MS;
}

/* One bounded piece of the current sweep. Returns 1 if the sweep has more
 * to do. A database error ends the sweep; the next one retries. */
int store__retention_step(struct store *s)
{
	if (!s->sweep_active)
		return 0;
	int64_t wall = store__now_ms(CLOCK_REALTIME);
	for (int i = 0; i < STORE__PRUNE_ROOMS_STEP && s->sweep_cur; i++) {
		struct store__room *r = s->sweep_cur;
		/* Count retention only changes when a room gets messages. */
		if (!s->cfg.retain_seconds && !r->w_dirty) {
			s->sweep_cur = r->w_next;
			continue;
		}
		int64_t n = prune_room(s, r, wall);
		if (n < 0) {
			s->sweep_active = 0;
			return 0;
		}
		if (n >= STORE__PRUNE_CHUNK)
			return 1; /* same room next step, after any due batch */
		r->w_dirty = 0;
		s->sweep_cur = r->w_next;
		if (n > 0)
			return 1; /* one transaction per step */
	}
	if (!s->sweep_cur)
		s->sweep_active = 0;
	return s->sweep_active;
}
