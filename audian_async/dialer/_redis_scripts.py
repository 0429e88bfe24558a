"""The Lua scripts behind :class:`~._redis_state.RedisCampaignState`, one per atomic step.

Every script starts with :data:`~._redis_lua.COMMON` (helpers) and works on the keys of one
namespace, all carrying the hash tag ``{namespace}`` so that they share one cluster slot.
Most scripts get the keys of their campaign as ``KEYS``, in the order of
:data:`CAMPAIGN_KEYS`; ``ENDED`` learns the campaign from the call key, so it builds that
campaign's keys from the namespace prefix (same slot, thanks to the hash tag), as do the
namespace's per-caller-ID counts and suppressed set, reached from the ``live`` key's name.
An item record may also hold ``caller_id`` (the pool's, for its current call) and
``not_due`` (a scheduled call holding no slot yet), and ``plan`` (the application's
decision on its call going on: ``{"finish": true}``, or ``{"after": {reason: ms, "*": ms}}``
for a redial that many milliseconds after the call ends for that reason).

Conventions:

* "now" is always the server's clock (``TIME``), in milliseconds: processes on several
  machines share these keys, and their clocks need not agree. Callers pass delays.
* Replies are arrays whose first element is a status string; numbers are integers (Lua
  numbers are truncated on the way out, so milliseconds travel as integers).
* An item record is JSON, written by ``encode`` (not ``cjson.encode``, which writes an empty
  array as ``{}``): ``{"state", "attempt", "call_ids", "reason", "next_at"}``, ``next_at``
  in server milliseconds.
* Members of ``ready`` are the index zero-padded (``%012d``), so that items due at the same
  millisecond (a whole campaign opened at once) are claimed in index order, not in the
  lexicographic order of their numbers. Every other key uses the bare index.
"""

from __future__ import annotations

from ._redis_lua import COMMON

__all__ = [
    "ADD",
    "ALL",
    "CALL_RECORD",
    "CAMPAIGN_KEYS",
    "CLAIM",
    "DECIDE",
    "ENDED",
    "LOST",
    "OPEN_BEGIN",
    "OPEN_CHUNK",
    "PENDING_RECORD",
    "PLACED",
    "REFUSED",
    "RENEW",
    "STATUS",
    "TAKE_OVER",
    "UNPLACED",
]

CAMPAIGN_KEYS = ("meta", "req", "items", "ready", "leases", "owner")
"""The suffixes of a campaign's keys, in the order scripts receive them after ``live``."""

PENDING_RECORD = '{"state":"pending","attempt":0,"call_ids":[],"reason":null,"next_at":null}'
"""The record of a new item (written as a constant: no encoding per item of a big open)."""


OPEN_BEGIN = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: name, digest, nonce candidate, total, retention ms
local K = campaign_keys()
if redis.call('EXISTS', K.meta) == 1 then
  local stored = redis.call('HGET', K.meta, 'digest') or ''
  if stored ~= ARGV[2] then return {'mismatch', stored} end
  return {'exists', redis.call('HLEN', K.req), redis.call('HGETALL', K.meta)}
end
-- A new campaign, or one whose meta already expired: what is left of the old one (keys
-- expire one by one) must not mix with the new items.
for name, key in pairs(K) do
  if name ~= 'meta' then redis.call('UNLINK', key) end
end
local total = tonumber(ARGV[4])
redis.call('HSET', K.meta, 'name', ARGV[1], 'digest', ARGV[2], 'nonce', ARGV[3],
  'total', total, 'unfinished', total, 'attempts', 0, 'retention', ARGV[5],
  'pending', 0, 'placing', 0, 'live', 0, 'waiting', 0, 'completed', 0, 'failed', 0)
if ARGV[2] ~= '' and total == 0 then
  -- An empty request list is finished as soon as it exists.
  redis.call('PEXPIRE', K.meta, tonumber(ARGV[5]))
end
return {'created', 0, redis.call('HGETALL', K.meta)}
"""
)

OPEN_CHUNK = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: digest, index of the first request, request wire...
-- Idempotent: an item that exists is left alone, so two processes opening the same
-- campaign at once may both send every chunk and the counts stay right.
local K = campaign_keys()
local stored = redis.call('HGET', K.meta, 'digest')
if stored ~= ARGV[1] then return {'mismatch', stored or ''} end
local now = now_ms()
local first = tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV do
  local index = first + i - 3
  if redis.call('HSETNX', K.req, index, ARGV[i]) == 1 then
    redis.call('HSET', K.items, index, '"""
    + PENDING_RECORD
    + r"""')
    redis.call('ZADD', K.ready, now, member(index))
    added = added + 1
  end
end
if added > 0 then redis.call('HINCRBY', K.meta, 'pending', added) end
return {'ok', added, redis.call('HLEN', K.req)}
"""
)

ADD = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: index, request wire
local K = campaign_keys()
if redis.call('EXISTS', K.meta) == 0 then return {'missing'} end
local existing = redis.call('HGET', K.req, ARGV[1])
if existing then
  if existing == ARGV[2] then return {'exists'} end
  return {'conflict'}
end
if tonumber(redis.call('HGET', K.meta, 'unfinished')) <= 0 then
  -- A finished campaign got its retention TTL: it is unfinished again, keep it.
  persist(K)
end
redis.call('HSET', K.req, ARGV[1], ARGV[2])
redis.call('HSET', K.items, ARGV[1], '"""
    + PENDING_RECORD
    + r"""')
redis.call('ZADD', K.ready, now_ms(), member(ARGV[1]))
redis.call('HINCRBY', K.meta, 'pending', 1)
redis.call('HINCRBY', K.meta, 'total', 1)
redis.call('HINCRBY', K.meta, 'unfinished', 1)
return {'added'}
"""
)

RESERVE = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- The next free index of a service campaign, for one process's ADD: processes submitting
-- to one campaign never pick the same one. A reply lost on the way leaves a gap, never a
-- shared index (ADD itself stays safe to repeat).
local K = campaign_keys()
if redis.call('EXISTS', K.meta) == 0 then return {'missing'} end
local total = tonumber(redis.call('HGET', K.meta, 'total') or '0')
local index = tonumber(redis.call('HGET', K.meta, 'next_index') or '0')
if index < total then index = total end
redis.call('HSET', K.meta, 'next_index', index + 1)
return {'ok', index}
"""
)

CLAIM = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner, pace
-- ARGV: process id, live-call limit, lease ms, pace interval ms, caller-ID cap (0: none),
--       then the caller-ID pool as (number, country prefix, area prefix) triples, if any
local K = campaign_keys()
local live = tonumber(redis.call('GET', KEYS[1]) or '0')
if live >= tonumber(ARGV[2]) then return {'no_slot'} end
local now = now_ms()
-- A number suppressed by any process (dialer.suppress()) is never called again: a due
-- item calling it fails here, without a slot, whichever process suppressed it and when.
local suppressed = suppressed_key(KEYS[1])
local any_suppressed = redis.call('EXISTS', suppressed) == 1
local skipped = 0
while true do
  local first = redis.call('ZRANGE', K.ready, 0, 0, 'WITHSCORES')
  if #first == 0 then return {'empty'} end
  local due = tonumber(first[2])
  if due > now then return {'not_due', due - now} end
  local index = tostring(tonumber(first[1]))
  local rec = load(K, index)
  -- Only pending and waiting items are ever in ``ready``; anything else is skipped.
  local claimable = rec and (rec.state == 'pending' or rec.state == 'waiting')
  rec = claimable and rec or nil
  local request = nil
  if rec and (any_suppressed or #ARGV > 5) then
    request = cjson.decode(redis.call('HGET', K.req, index) or '{}')
  end
  if rec and any_suppressed and type(request.to) == 'string'
      and redis.call('SISMEMBER', suppressed, request.to) == 1 then
    rec.reason = 'suppressed'
    rec.next_at = nil
    set_state(K, rec, 'failed')
    save(K, index, rec)
    finished(K)
    skipped = skipped + 1
    -- A script blocks the server: after many at once, let the caller ask again.
    if skipped >= 1000 then return {'not_due', 0} end
    rec = nil
  elseif rec and #ARGV > 5 then
    -- A request without its own caller ID takes one of the pool with the slot, or waits
    -- in ``ready`` while every one is at the cap (as would any other such item).
    if request.from == nil or request.from == cjson.null then
      rec.caller_id = choose_caller_id(KEYS[1], request.to or '', tonumber(ARGV[5]), 6)
      if not rec.caller_id then return {'no_caller_id'} end
      redis.call('HINCRBY', caller_ids_key(KEYS[1]), rec.caller_id, 1)
    end
  end
  redis.call('ZREM', K.ready, first[1])
  if rec then
    redis.call('INCR', KEYS[1])
    local wait = 0
    local interval = tonumber(ARGV[4])
    if interval > 0 then
      local free_at = tonumber(redis.call('GET', KEYS[8]) or '0')
      local start = math.max(now, free_at)
      wait = start - now
      -- One key per namespace; its TTL only cleans up after the last campaign.
      redis.call('SET', KEYS[8], string.format('%.0f', start + interval),
        'PX', math.floor(wait + interval + 60000))
    end
    rec.attempt = #rec.call_ids + 1
    rec.next_at = nil
    set_state(K, rec, 'placing')
    local raw = save(K, index, rec)
    redis.call('ZADD', K.leases, now + wait + tonumber(ARGV[3]), index)
    redis.call('HSET', K.owner, index, ARGV[1])
    return {'claimed', tonumber(index), rec.attempt, raw,
            redis.call('HGET', K.req, index) or '', wait}
  end
end
"""
)

PLACED = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner, call key, early key,
--       early decision key
-- ARGV: process id, index, attempt, call id, retention ms, decisions JSON (or ''), digest,
--       max attempts
local K = campaign_keys()
local index = ARGV[2]
local attempt = tonumber(ARGV[3])
local call_id = ARGV[4]
local rec = load(K, index)
if not rec then return {'none'} end
if rec.call_ids[attempt] == call_id then
  -- This attempt is already recorded (another process replayed the same key): no change.
  return {'none'}
end
if rec.state ~= 'placing' or rec.attempt ~= attempt then return {'none'} end
if redis.call('EXISTS', KEYS[8]) == 1 then
  -- The API answered with a call another item or attempt already placed: this attempt
  -- placed nothing of its own, and tracking that call twice would free its slot twice.
  return final(K, KEYS[1], index, rec, 'failed', 'duplicate_call_id')
end
local early = redis.call('GET', KEYS[9])
if early and ARGV[6] == '' then
  -- A terminal event overtook the create reply (rare): nothing is written yet, and the
  -- caller sends again with the redial decisions, which it spares building otherwise.
  return {'decide'}
end
table.insert(rec.call_ids, call_id)
set_state(K, rec, 'live')
local decided = redis.call('GET', KEYS[10])
if decided then
  -- A handler decided on this call before its reply got here (see DECIDE). A finish
  -- already planned for the item (on its previous call) stays; a redial counts only
  -- within max attempts.
  redis.call('DEL', KEYS[10])
  local plan = cjson.decode(decided)
  if not (rec.plan and rec.plan.finish)
      and (plan.finish or #rec.call_ids < tonumber(ARGV[8])) then
    rec.plan = plan
  end
end
redis.call('HINCRBY', K.meta, 'attempts', 1)
redis.call('HSET', K.owner, index, ARGV[1])
redis.call('SET', KEYS[8], ARGV[7] .. ':' .. index, 'PX', tonumber(ARGV[5]))
if early then
  -- A terminal event overtook the create reply: apply it now.
  redis.call('DEL', KEYS[9])
  local sep = string.find(early, '\n', 1, true)
  local status = string.sub(early, 1, sep - 1)
  local reason = string.sub(early, sep + 1)
  if reason == '' then reason = 'unknown' end
  return apply_end(K, KEYS[1], index, rec, status, reason, cjson.decode(ARGV[6]), now_ms())
end
return {'changed', tonumber(index), rec.state, -1, save(K, index, rec)}
"""
)

ENDED = (
    COMMON
    + r"""
-- KEYS: live, call key, early key
-- ARGV: namespace prefix '{ns}:', status, reason, decisions JSON, early TTL ms, call id
local where = redis.call('GET', KEYS[2])
if not where then
  -- The create reply has not recorded this call yet; ``placed`` applies it. The first
  -- event wins: a duplicate does not overwrite it.
  redis.call('SET', KEYS[3], ARGV[2] .. '\n' .. ARGV[3], 'NX', 'PX', tonumber(ARGV[5]))
  return {'early'}
end
local sep = string.find(where, ':', 1, true)
local digest = string.sub(where, 1, sep - 1)
local index = string.sub(where, sep + 1)
local K = keys_from(ARGV[1] .. 'c:' .. digest .. ':')
local rec = load(K, index)
if not rec or rec.state ~= 'live' then return {'none'} end
if rec.call_ids[#rec.call_ids] ~= ARGV[6] then return {'none'} end
local reply = apply_end(K, KEYS[1], index, rec, ARGV[2], ARGV[3], cjson.decode(ARGV[4]),
  now_ms())
table.insert(reply, digest)
return reply
"""
)

SCHEDULED = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: index, call id
local K = campaign_keys()
local rec = live_record(K, ARGV[1], ARGV[2])
if not rec then return {'none'} end
if rec.not_due then return {'none'} end
rec.not_due = true
redis.call('HINCRBY', K.meta, 'scheduled', 1)
free_slot(KEYS[1])
free_caller_id(KEYS[1], rec)  -- the record keeps it for when the call starts
save(K, ARGV[1], rec)
return {'ok'}
"""
)

DUE = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: index, call id
local K = campaign_keys()
local rec = live_record(K, ARGV[1], ARGV[2])
if not rec then return {'none'} end
if not rec.not_due then return {'none'} end
rec.not_due = nil
redis.call('HINCRBY', K.meta, 'scheduled', -1)
-- Taken even over the limit: the API starts the call whatever the dialers hold.
redis.call('INCR', KEYS[1])
if rec.caller_id then redis.call('HINCRBY', caller_ids_key(KEYS[1]), rec.caller_id, 1) end
save(K, ARGV[1], rec)
return {'ok'}
"""
)

REFUSED = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: process id, index, reason
local K = campaign_keys()
local rec = load(K, ARGV[2])
if not rec or rec.state ~= 'placing' then return {'none'} end
if redis.call('HGET', K.owner, ARGV[2]) ~= ARGV[1] then return {'not_owner'} end
return final(K, KEYS[1], ARGV[2], rec, 'failed', ARGV[3])
"""
)

LOST = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: index, call id
local K = campaign_keys()
local rec = live_record(K, ARGV[1], ARGV[2])
if not rec then return {'none'} end
return final(K, KEYS[1], ARGV[1], rec, 'failed', 'lost')
"""
)

UNPLACED = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: process id, index, due in ms
local K = campaign_keys()
local index = ARGV[2]
local rec = load(K, index)
if not rec or rec.state ~= 'placing' then return {'none'} end
if redis.call('HGET', K.owner, index) ~= ARGV[1] then return {'not_owner'} end
local due_in = tonumber(ARGV[3])
local due = now_ms() + due_in
local state = 'pending'
if #rec.call_ids > 0 then state = 'waiting' end
rec.next_at = nil
if state == 'waiting' or due_in > 0 then rec.next_at = due end
set_state(K, rec, state)
free_slot(KEYS[1])
free_caller_id(KEYS[1], rec)
rec.caller_id = nil
release(K, index)
redis.call('ZADD', K.ready, due, member(index))
return {'changed', tonumber(index), rec.state, due_in, save(K, index, rec)}
"""
)

RENEW = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: process id, lease ms, index...
local K = campaign_keys()
local expires = now_ms() + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV do
  if redis.call('HGET', K.owner, ARGV[i]) == ARGV[1] then
    redis.call('ZADD', K.leases, 'XX', expires, ARGV[i])
  else
    table.insert(lost, tonumber(ARGV[i]))
  end
end
return {'ok', lost}
"""
)

TAKE_OVER = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner
-- ARGV: process id, lease ms, max items
local K = campaign_keys()
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0,
  tonumber(ARGV[3]))
local taken = {}
for _, index in ipairs(expired) do
  local rec = load(K, index)
  if rec and (rec.state == 'placing' or rec.state == 'live') then
    -- The slot stays held: the item's call may be live, or its create in flight.
    redis.call('ZADD', K.leases, now + tonumber(ARGV[2]), index)
    redis.call('HSET', K.owner, index, ARGV[1])
    table.insert(taken, {tonumber(index), redis.call('HGET', K.items, index),
                         redis.call('HGET', K.req, index) or ''})
  else
    release(K, index)
  end
end
return {'ok', taken}
"""
)

DECIDE = (
    COMMON
    + r"""
-- KEYS: live, meta, req, items, ready, leases, owner, call key, early decision key
-- ARGV: digest, call id, 'finish' or 'redial', plan JSON (redial: {"after": {reason: ms,
--       "*": ms}}), max attempts, early TTL ms, then the final reasons a redial cannot
--       reopen
-- The application's decision on the item that placed a call (a handler's finish() or
-- redial()), whichever process placed it and whichever will get the call's end: a call
-- going on keeps it in its record as ``plan`` (applied by ``apply_end``), a waiting or
-- finished item is changed now. A call not recorded yet (its webhook overtook the reply to
-- the create that placed it, maybe in another process) gets the decision kept for PLACED,
-- as ENDED keeps an early event: the first decision wins, as the first event does.
local where = redis.call('GET', KEYS[8])
if not where then
  local plan = ARGV[4]
  if ARGV[3] == 'finish' then plan = '{"finish":true}' end
  redis.call('SET', KEYS[9], plan, 'NX', 'PX', tonumber(ARGV[6]))
  return {'early'}
end
local sep = string.find(where, ':', 1, true)
if string.sub(where, 1, sep - 1) ~= ARGV[1] then return {'unknown'} end
local K = campaign_keys()
local index = string.sub(where, sep + 1)
local rec = load(K, index)
if not rec then return {'unknown'} end
local state = rec.state
if ARGV[3] == 'finish' then
  if state == 'completed' or state == 'failed' then return {'final'} end
  if state == 'waiting' then
    -- Its redial is cancelled: its last call's outcome is the item's.
    redis.call('ZREM', K.ready, member(index))
    rec.next_at = nil
    local outcome = 'completed'
    if rec.reason then outcome = 'failed' end
    set_state(K, rec, outcome)
    finished(K)
    return {'changed', tonumber(index), rec.state, -1, save(K, index, rec)}
  end
  if state ~= 'live' and state ~= 'placing' then return {'unknown'} end
  rec.plan = {finish = true}
  save(K, index, rec)
  return {'set'}
end
-- A redial: only after the item's latest call, once, and within max attempts.
if rec.call_ids[#rec.call_ids] ~= ARGV[2] then return {'no'} end
if state == 'waiting' or state == 'placing' then return {'yes'} end
if #rec.call_ids >= tonumber(ARGV[5]) then return {'no'} end
local plan = cjson.decode(ARGV[4])
if state == 'live' then
  if rec.plan and rec.plan.finish then return {'no'} end
  rec.plan = plan
  save(K, index, rec)
  return {'yes'}
end
if state ~= 'completed' and state ~= 'failed' then return {'no'} end
for i = 7, #ARGV do
  if rec.reason == ARGV[i] then return {'no'} end
end
-- A finished item opens again: the campaign is unfinished, its keys kept.
if tonumber(redis.call('HGET', K.meta, 'unfinished') or '0') <= 0 then persist(K) end
redis.call('HINCRBY', K.meta, 'unfinished', 1)
return schedule(K, index, rec, planned_delay(plan, rec.reason), now_ms())
"""
)

CALL_RECORD = r"""
-- KEYS: call key, the campaign's items
-- ARGV: campaign digest
-- The record of the item that placed a call, if this campaign's (reads only).
local where = redis.call('GET', KEYS[1])
if not where then return {'none'} end
local sep = string.find(where, ':', 1, true)
if string.sub(where, 1, sep - 1) ~= ARGV[1] then return {'none'} end
local index = string.sub(where, sep + 1)
local raw = redis.call('HGET', KEYS[2], index)
if not raw then return {'none'} end
return {'ok', tonumber(index), raw}
"""

STATUS = r"""
-- KEYS: live, meta
-- What a process re-reads a few times a second, in one round trip: the campaign's counts
-- and the namespace's live calls. Reads only (no TIME, no write).
return {redis.call('HGETALL', KEYS[2]), tonumber(redis.call('GET', KEYS[1]) or '0')}
"""

ALL = (
    OPEN_BEGIN,
    OPEN_CHUNK,
    ADD,
    RESERVE,
    CLAIM,
    PLACED,
    ENDED,
    SCHEDULED,
    DUE,
    REFUSED,
    LOST,
    UNPLACED,
    RENEW,
    TAKE_OVER,
    STATUS,
    CALL_RECORD,
    DECIDE,
)
"""Every script, loaded once when a connection opens."""
