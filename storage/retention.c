/*
 * retention.c - pruning old history, run by the writer thread only.
 *
 * Per room, the store keeps at most retain_messages messages and nothing
 * older than retain_seconds (0 disables either rule). Every STORE__SWEEP_MS
 * the writer starts a sweep over its list of rooms. Each retention step is
 * one transaction deleting at most STORE__PRUNE_CHUNK rows (from one or
 * more rooms) and then returns to the writer loop, which alternates steps
 * with batches: pruning a large backlog never holds up messages for longer
 * than one bounded DELETE, and a writer that is never idle still prunes
 * about as many rows per turn as it inserts.
 *
 * Pruning always removes a prefix of a room's seqs: for age, the cut-off is
 * the highest seq among the oldest rows whose ts has expired (seq and ts
 * grow together; a clock stepping backwards can at worst keep or remove a
 * few rows early). Each prune first writes the room's last seq into
 * rooms.last_seq, so seqs continue even when every message has expired.
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

/* The highest seq of r to delete now, at most budget rows past its first
 * one; 0 if nothing is due. Returns SQLITE_OK or an error code. */
static int prune_target(struct store *s, struct store__room *r, int64_t wall_ms,
			uint64_t budget, uint64_t *upto_out)
{
	uint64_t first, upto = 0, aged;
	*upto_out = 0;
	if (!r->w_id)
		return SQLITE_OK;
	sqlite3_bind_int64(s->st_min_seq, 1, r->w_id);
	int rc = query_u64(s->st_min_seq, &first);
	if (rc != SQLITE_OK || !first)
		return rc; /* error, or no messages left */
	if (s->cfg.retain_messages && r->w_last_seq > s->cfg.retain_messages) {
		uint64_t keep = s->cfg.retain_messages;
		upto = r->w_last_seq - keep;
		/* Seqs (hole_lo, hole_hi] were skipped by an unclean start
		 * (reserve.c) and hold no row: count only the rows. */
		if (r->w_hole_hi > r->w_hole_lo && first <= r->w_hole_lo && upto < r->w_hole_hi) {
			uint64_t above = r->w_last_seq - r->w_hole_hi; /* rows above the hole */
			upto = r->w_hole_lo > keep - above ? r->w_hole_lo - (keep - above) : 0;
		}
	}
	if (upto > first + budget - 1)
		upto = first + budget - 1;
	if (s->cfg.retain_seconds) {
		sqlite3_bind_int64(s->st_age_max, 1, r->w_id);
		sqlite3_bind_int64(s->st_age_max, 2, (sqlite3_int64)budget);
		sqlite3_bind_int64(s->st_age_max, 3,
				   wall_ms - (int64_t)s->cfg.retain_seconds * 1000);
		if ((rc = query_u64(s->st_age_max, &aged)) != SQLITE_OK)
			return rc;
		if (aged > upto)
			upto = aged;
	}
	if (upto >= first)
		*upto_out = upto;
	return SQLITE_OK;
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

/* One bounded piece of the current sweep: one transaction deleting at
 * most STORE__PRUNE_CHUNK rows, from as many rooms as that covers (up to
 * STORE__PRUNE_ROOMS_STEP). Returns 1 if the sweep has more to do. A
 * database error ends the sweep; the next one retries. */
int store__retention_step(struct store *s)
{
	struct store__room *done[STORE__PRUNE_ROOMS_STEP];
	size_t ndone = 0;
	uint64_t budget = STORE__PRUNE_CHUNK, total = 0;
	int in_txn = 0, rc = SQLITE_OK;

	if (!s->sweep_active)
		return 0;
	int64_t wall = store__now_ms(CLOCK_REALTIME);
	struct store__room *cur = s->sweep_cur;
	while (cur && budget && ndone < STORE__PRUNE_ROOMS_STEP) {
		/* Count retention only changes when a room gets messages. */
		if (!s->cfg.retain_seconds && !cur->w_dirty) {
			cur = cur->w_next;
			continue;
		}
		uint64_t upto;
		if ((rc = prune_target(s, cur, wall, budget, &upto)) != SQLITE_OK)
			break;
		if (upto) {
			if (!in_txn) {
				if ((rc = store__step_reset(s->st_begin)) != SQLITE_DONE)
					break;
				in_txn = 1;
			}
			/* The seqs must outlive the rows: record the room's
			 * last seq before its prefix goes (writer.c). */
			sqlite3_bind_int64(s->st_room_seq, 1, cur->w_id);
			sqlite3_bind_int64(s->st_room_seq, 2, (sqlite3_int64)cur->w_last_seq);
			if ((rc = store__step_reset(s->st_room_seq)) != SQLITE_DONE)
				break;
			sqlite3_bind_int64(s->st_prune, 1, cur->w_id);
			sqlite3_bind_int64(s->st_prune, 2, (sqlite3_int64)upto);
			if ((rc = store__step_reset(s->st_prune)) != SQLITE_DONE)
				break;
			rc = SQLITE_OK;
			uint64_t n = (uint64_t)sqlite3_changes(s->wdb);
			total += n;
			if (n >= budget)
				break; /* this room may have more: it stays the cursor */
			budget -= n;
		}
		done[ndone++] = cur;
		cur = cur->w_next;
	}
	if (rc == SQLITE_OK && in_txn && (rc = store__step_reset(s->st_commit)) == SQLITE_DONE)
		rc = SQLITE_OK;
	if (rc != SQLITE_OK) {
		if (!sqlite3_get_autocommit(s->wdb))
			store__step_reset(s->st_rollback);
		s->sweep_active = 0; /* rooms stay dirty; the next sweep retries */
		return 0;
	}
	for (size_t i = 0; i < ndone; i++)
		done[i]->w_dirty = 0;
	s->sweep_cur = cur;
	if (!cur)
		s->sweep_active = 0;
	if (total) {
		pthread_mutex_lock(&s->wlock);
		s->pruned += total;
		pthread_mutex_unlock(&s->wlock);
	}
	return s->sweep_active;
}
