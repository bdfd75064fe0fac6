/*
 * scripts.c - the Lua scripts Redis runs for the cluster. A script runs
 * atomically: taking a seq and appending the entry happen in one step, so
 * two nodes publishing to one room can never both get the same seq, and
 * the stream holds the room's messages in seq order.
 *
 * Numbers: Lua's are doubles; seqs and offsets stay exact below 2^53, and
 * are formatted with %d so Redis never sees "1e+15".
 */
#include "cluster_int.h"

/*
 * publish. KEYS: 1 parley:seq, 2 parley:off, 3 parley:log:<k>,
 * 4 parley:idem:<room>:<key> (unused without a key), 5 parley:hold.
 * ARGV: 1 room, 2 persist (0/1), 3 floor (this node's last applied seq of
 * the room: a seq is never below what the publisher has seen, even if
 * Redis lost its counter), 4 shard, 5 ts, 6 from, 7 data, 8 origin node,
 * 9 pending id, 10 MAXLEN, 11 keyed (0/1), 12 key window ms, 13 the key ("" if
 * none: it travels with the entry so every replica stores it, and a restore
 * can put it back), 14 the connection left out of the fan-out on the origin
 * node (echo:false; "0": none), which holds even if the publish timed out.
 * The entry leaves out 'k' without a key and 'e' without an exception (the
 * tail reads a missing one as none): every field is a reply object each
 * node's tail parses, about 300 instructions each.
 * Returns {1, seq, offset} for a new entry, {0, seq, offset} for a key seen
 * within the window (nothing appended), or an error "HOLD ..." while the
 * cluster restores after a Redis restart.
 */
const char cluster__pub_lua[] =
	"if redis.call('EXISTS', KEYS[5]) == 1 then\n"
	"  return redis.error_reply('HOLD restoring after a Redis restart')\n"
	"end\n"
	"if ARGV[11] == '1' then\n"
	"  local prev = redis.call('GET', KEYS[4])\n"
	"  if prev then\n"
	"    local s, o = string.match(prev, '^(%d+):(%d+)$')\n"
	"    return {0, tonumber(s), tonumber(o)}\n"
	"  end\n"
	"end\n"
	"local seq = 0\n"
	"if ARGV[2] == '1' then\n"
	"  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')\n"
	"  local floor = tonumber(ARGV[3])\n"
	"  if floor > cur then cur = floor end\n"
	"  seq = cur + 1\n"
	"  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', seq))\n"
	"end\n"
	"local off = redis.call('HINCRBY', KEYS[2], ARGV[4], 1)\n"
	"local e = {'XADD', KEYS[3], 'MAXLEN', '~', ARGV[10], '*',\n"
	"  'r', ARGV[1], 's', string.format('%d', seq), 'o', off, 't', ARGV[5],\n"
	"  'f', ARGV[6], 'd', ARGV[7], 'n', ARGV[8], 'x', ARGV[9]}\n"
	"if ARGV[13] ~= '' then e[#e + 1] = 'k'; e[#e + 1] = ARGV[13] end\n"
	"if ARGV[14] ~= '0' then e[#e + 1] = 'e'; e[#e + 1] = ARGV[14] end\n"
	"redis.call(unpack(e))\n"
	"if ARGV[11] == '1' then\n"
	"  redis.call('SET', KEYS[4], string.format('%d:%d', seq, off), 'PX', ARGV[12])\n"
	"end\n"
	"return {1, seq, off}\n";

/*
 * restore: re-appends one entry Redis lost, with its original offset, if
 * Redis's offset for the shard is exactly one below it (an entry already
 * there, restored by another node or surviving, is skipped). The new
 * stream id is above both the stream's top and the restoring node's own
 * position, so nodes that had applied the entry (reading after that
 * position) see it again and skip it by offset, and nodes that had not
 * apply it. KEYS: 1 parley:seq, 2 parley:off, 3 parley:log:<k>.
 * ARGV: 1 shard, 2 offset, 3 room ("" for a filler), 4 seq (0: filler or
 * volatile), 5 ts, 6 from, 7 data, 8 origin, 9 the node's position id,
 * 10 MAXLEN, 11 the idempotency key ("" if none), 12 key window ms (the
 * key is put back so that a client's retry after the restart is still
 * recognised; a key is written outside KEYS, which non-cluster Redis
 * allows), 13..18 a moderation entry's kind, room, seq, user, until,
 * reason (kind "": not one), re-appended with its 'm' fields.
 * Returns 1 appended, 0 skipped, -1 not contiguous.
 */
const char cluster__restore_lua[] =
	"local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
	"local off = tonumber(ARGV[2])\n"
	"if off <= cur then return 0 end\n"
	"if off ~= cur + 1 then return -1 end\n"
	"local function parse(id)\n"
	"  local a, b = string.match(id, '^(%d+)-(%d+)$')\n"
	"  return tonumber(a), tonumber(b)\n"
	"end\n"
	"local ms, sq = parse(ARGV[9])\n"
	"local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)\n"
	"if #top > 0 then\n"
	"  local t1, t2 = parse(top[1][1])\n"
	"  if t1 > ms or (t1 == ms and t2 > sq) then ms, sq = t1, t2 end\n"
	"end\n"
	"local id = string.format('%d-%d', ms, sq + 1)\n"
	"if ARGV[13] ~= '' then\n"
	"  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[10], id,\n"
	"    'm', ARGV[13], 'o', ARGV[2], 't', ARGV[5], 'n', ARGV[8], 'x', '0',\n"
	"    'a', ARGV[14], 'q', ARGV[15], 'u', ARGV[16], 'w', ARGV[17], 'y', ARGV[18])\n"
	"  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[10], id,\n"
	"  'r', ARGV[3], 's', ARGV[4], 'o', ARGV[2], 't', ARGV[5],\n"
	"  'f', ARGV[6], 'd', ARGV[7], 'n', ARGV[8], 'x', '0', 'k', ARGV[11])\n"
	"redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
	"if ARGV[11] ~= '' then\n"
	"  redis.call('SET', 'parley:idem:' .. ARGV[3] .. ':' .. ARGV[11],\n"
	"    ARGV[4] .. ':' .. ARGV[2], 'PX', ARGV[12], 'NX')\n"
	"end\n"
	"local seq = tonumber(ARGV[4])\n"
	"if seq > 0 then\n"
	"  local c = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0')\n"
	"  if seq > c then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end\n"
	"end\n"
	"return 1\n";

/*
 * moderate: appends a moderation entry (docs/cluster.md, "Moderation")
 * to shard k: a delete goes to its room's shard, so it is ordered after
 * the message it deletes; ban, unban and erase go to shard 0. No seq is
 * taken: the entry only takes the shard's next offset, like a volatile
 * message, and carries no 'r' field, so a node that does not know 'm'
 * would treat it as a filler. KEYS: 1 parley:off, 2 parley:log:<k>,
 * 3 parley:hold. ARGV: 1 shard, 2 ts, 3 origin node, 4 pending id,
 * 5 MAXLEN, 6 kind (d delete, e erase, b ban, u unban), 7 room (delete),
 * 8 seq (delete), 9 user (the target; for a delete: only_sender, "" for
 * none), 10 until ms (ban), 11 reason (ban).
 * Returns {1, 0, offset}, or the HOLD error like publish.
 */
const char cluster__mod_lua[] =
	"if redis.call('EXISTS', KEYS[3]) == 1 then\n"
	"  return redis.error_reply('HOLD restoring after a Redis restart')\n"
	"end\n"
	"local off = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)\n"
	"redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',\n"
	"  'm', ARGV[6], 'o', off, 't', ARGV[2], 'n', ARGV[3], 'x', ARGV[4],\n"
	"  'a', ARGV[7], 'q', ARGV[8], 'u', ARGV[9], 'w', ARGV[10], 'y', ARGV[11])\n"
	"return {1, 0, off}\n";
