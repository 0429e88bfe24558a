"""The Lua helpers every script of :mod:`._redis_scripts` starts with: loading and saving
an item's record, its per-state counts, freeing a slot and a caller ID, the end of a call.

The conventions (server clock, reply shapes, record encoding, ``ready`` members) are those
of :mod:`._redis_scripts`.
"""

from __future__ import annotations

__all__ = ["COMMON"]

COMMON = r"""
-- Scripts read TIME, then write: Redis 5+ replicates their effects, not the script;
-- before 5 this call asks for that (since 7 it is a no-op).
if redis.replicate_commands then redis.replicate_commands() end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function keys_from(prefix)
  return {meta = prefix .. 'meta', req = prefix .. 'req', items = prefix .. 'items',
          ready = prefix .. 'ready', leases = prefix .. 'leases', owner = prefix .. 'owner'}
end

-- KEYS[1] is always the namespace's live-call counter, KEYS[2..7] the campaign's keys.
local function campaign_keys()
  return {meta = KEYS[2], req = KEYS[3], items = KEYS[4], ready = KEYS[5],
          leases = KEYS[6], owner = KEYS[7]}
end

local function member(index)
  return string.format('%012d', tonumber(index))
end

local function load(K, index)
  local raw = redis.call('HGET', K.items, index)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if rec.reason == cjson.null then rec.reason = nil end
  if rec.next_at == cjson.null then rec.next_at = nil end
  if type(rec.call_ids) ~= 'table' then rec.call_ids = {} end
  if rec.caller_id == cjson.null then rec.caller_id = nil end
  if type(rec.plan) ~= 'table' then rec.plan = nil end
  return rec
end

-- The record of item ``index`` while ``call_id`` is its live call, else nil.
local function live_record(K, index, call_id)
  local rec = load(K, index)
  if not rec or rec.state ~= 'live' or rec.call_ids[#rec.call_ids] ~= call_id then
    return nil
  end
  return rec
end

local function encode(rec)
  local ids = '[]'
  if #rec.call_ids > 0 then ids = cjson.encode(rec.call_ids) end
  local reason = 'null'
  if rec.reason then reason = cjson.encode(rec.reason) end
  local next_at = 'null'
  if rec.next_at then next_at = string.format('%.0f', rec.next_at) end
  local not_due = ''
  if rec.not_due then not_due = ',"not_due":true' end
  local caller_id = ''
  if rec.caller_id then caller_id = ',"caller_id":' .. cjson.encode(rec.caller_id) end
  local plan = ''
  if rec.plan then plan = ',"plan":' .. cjson.encode(rec.plan) end
  return '{"state":' .. cjson.encode(rec.state) .. ',"attempt":' ..
    string.format('%d', rec.attempt) .. ',"call_ids":' .. ids .. ',"reason":' .. reason ..
    ',"next_at":' .. next_at .. not_due .. caller_id .. plan .. '}'
end

local function save(K, index, rec)
  local raw = encode(rec)
  redis.call('HSET', K.items, index, raw)
  return raw
end

-- Move the item to another state, keeping the per-state counts of the campaign.
local function set_state(K, rec, state)
  redis.call('HINCRBY', K.meta, rec.state, -1)
  redis.call('HINCRBY', K.meta, state, 1)
  rec.state = state
end

local function free_slot(live)
  local n = tonumber(redis.call('GET', live) or '0')
  if n > 0 then redis.call('DECR', live) end
end

-- The namespace's live calls per pooled caller ID (a hash beside ``live``, the same hash
-- tag): caller IDs are the account's, shared by every campaign like its live-call limit.
local function caller_ids_key(live)
  return string.sub(live, 1, -5) .. 'caller_ids'
end

-- The live call of ``rec`` no longer counts on its pooled caller ID (if it has one).
local function free_caller_id(live, rec)
  if not rec.caller_id then return end
  local key = caller_ids_key(live)
  local n = tonumber(redis.call('HGET', key, rec.caller_id) or '0')
  if n > 1 then
    redis.call('HINCRBY', key, rec.caller_id, -1)
  else
    redis.call('HDEL', key, rec.caller_id)
  end
end

-- The pool's caller ID for callee ``to``: given as (number, '+' country code, '+' country
-- code and area code or '') triples from ARGV[first], it is the first one of the callee's
-- area, else of its country, else any, the least busy within that group, skipping those
-- at ``cap`` (0: none); nil when every one is at the cap. Country codes are a prefix
-- code, and so are a country's area codes (they are dialled without a separator): a
-- prefix match is the same test as comparing the parsed codes.
local function choose_caller_id(live, to, cap, first)
  local key = caller_ids_key(live)
  local best, best_rank, best_count = nil, 3, 0
  for a = first, #ARGV - 2, 3 do
    local number, country, area = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    local count = tonumber(redis.call('HGET', key, number) or '0')
    if cap <= 0 or count < cap then
      local rank = 2
      if area ~= '' and string.sub(to, 1, #area) == area then
        rank = 0
      elseif string.sub(to, 1, #country) == country then
        rank = 1
      end
      if rank < best_rank or (rank == best_rank and count < best_count) then
        best, best_rank, best_count = number, rank, count
      end
    end
  end
  return best
end

-- The item's call ended (or never was): free its slot and its caller ID, unless it was a
-- scheduled call still waiting for its time, which held neither.
local function call_over(K, live, rec)
  if rec.not_due then
    rec.not_due = nil
    redis.call('HINCRBY', K.meta, 'scheduled', -1)
  else
    free_slot(live)
    free_caller_id(live, rec)
  end
  rec.caller_id = nil
end

-- The namespace's suppressed numbers (a set beside ``live``): see CLAIM.
local function suppressed_key(live)
  return string.sub(live, 1, -5) .. 'suppressed'
end

local function release(K, index)
  redis.call('ZREM', K.leases, index)
  redis.call('HDEL', K.owner, index)
end

local function persist(K)
  for _, key in pairs(K) do redis.call('PERSIST', key) end
end

-- One more item has its outcome; the last one starts the campaign's retention clock.
local function finished(K)
  local left = redis.call('HINCRBY', K.meta, 'unfinished', -1)
  if left <= 0 then
    local ttl = tonumber(redis.call('HGET', K.meta, 'retention') or '0')
    if ttl > 0 then
      for _, key in pairs(K) do redis.call('PEXPIRE', key, ttl) end
    end
  end
end

local function final(K, live, index, rec, state, reason)
  rec.reason = reason
  rec.next_at = nil
  set_state(K, rec, state)
  call_over(K, live, rec)
  release(K, index)
  finished(K)
  return {'changed', tonumber(index), rec.state, -1, save(K, index, rec)}
end

-- The redial delay (ms) a plan of the application gives after a call that ended for
-- ``reason`` (nil: completed): its row for that reason, else its default ``*``.
local function planned_delay(plan, reason)
  local delays = plan.after
  return tonumber(reason and delays[reason] or delays['*'])
end

-- Move a waiting or final item to ``waiting`` for a redial ``delay`` ms from ``now``.
local function schedule(K, index, rec, delay, now)
  rec.next_at = now + delay
  set_state(K, rec, 'waiting')
  redis.call('ZADD', K.ready, rec.next_at, member(index))
  return {'changed', tonumber(index), rec.state, delay, save(K, index, rec)}
end

-- The item's current call ended with a terminal status. ``decisions`` maps a reason to
-- the redial delay (ms, or -1 for never) for each count of attempts placed so far.
--
-- The application's plan for the call (a handler's finish() or redial(), kept in the
-- record by DECIDE so that whichever process gets the call's end applies it) comes first.
-- Otherwise a completed call is redialed only if the caller passes a row for
-- ``completed``; the policy never has one.
local function apply_end(K, live, index, rec, status, reason, decisions, now)
  local plan = rec.plan
  rec.plan = nil
  if status == 'completed' then reason = nil end
  if plan then
    if plan.finish then
      if reason then return final(K, live, index, rec, 'failed', reason) end
      return final(K, live, index, rec, 'completed', nil)
    end
    rec.reason = reason
    call_over(K, live, rec)
    release(K, index)
    return schedule(K, index, rec, planned_delay(plan, reason), now)
  end
  if status == 'completed' and type(decisions.completed) ~= 'table' then
    return final(K, live, index, rec, 'completed', nil)
  end
  local row = decisions[reason or 'completed']
  local delay = nil
  if type(row) == 'table' then delay = row[#rec.call_ids] end
  if type(delay) ~= 'number' or delay < 0 then
    if not reason then return final(K, live, index, rec, 'completed', nil) end
    return final(K, live, index, rec, 'failed', reason)
  end
  rec.reason = reason
  call_over(K, live, rec)
  release(K, index)
  return schedule(K, index, rec, delay, now)
end
"""
