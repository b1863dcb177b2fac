"""Lua scripts of the Redis store: each runs atomically in Redis, so no two replicas interleave.

Every script gets the same KEYS, all of one event (one hash slot: the event id is a hash tag):
ctl (hash: counters, controls, bucket, shuffle), entries (hash: wallet -> JSON place), pre (zset:
pre-sale arrivals awaiting the shuffle, by seq), wait (zset: waiting wallets by rank), adm (zset:
admitted wallets by expiry ms), out (zset: admissions by time ms, for the measured outflow),
order (list: the published pre-sale order).

A place is JSON: s state, q seq, r rank (0: none yet), p pre-sale (0/1), j joined ms, l last
seen ms, a admitted ms, x admission expiry ms (0: none). Times are milliseconds since the epoch.
"""

from __future__ import annotations

KEY_NAMES = ("ctl", "entries", "pre", "wait", "adm", "out", "order")

PRELUDE = """
local ctl, entries, pre, wait, adm, out, order =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

local function get(wallet)
  local raw = redis.call('HGET', entries, wallet)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function put(wallet, e)
  redis.call('HSET', entries, wallet, cjson.encode(e))
end

-- An admission past its expiry is expired, whether or not an admit step has swept it yet.
local function expire_if_lapsed(wallet, e, now)
  if e.s == 'admitted' and e.x <= now then
    e.s = 'expired'
    put(wallet, e)
    if redis.call('ZREM', adm, wallet) == 1 then redis.call('HINCRBY', ctl, 'expired', 1) end
  end
end

local function touch(wallet, e, now, touch_ms)
  if e.s == 'away' then
    -- Back after being set aside: first in line again, by the rank it always kept.
    e.s = 'waiting'
    e.l = now
    redis.call('ZADD', wait, e.r, wallet)
    redis.call('HINCRBY', ctl, 'away', -1)
    put(wallet, e)
  elseif now - e.l >= touch_ms then
    e.l = now
    put(wallet, e)
  end
end

local function view(wallet, e, now, window_ms)
  local position = 0
  if e.s == 'waiting' or e.s == 'away' then
    if e.r == 0 then
      position = -1
    else
      position = redis.call('ZCOUNT', wait, '-inf', '(' .. string.format('%.0f', e.r))
    end
  end
  local recent = redis.call('ZCOUNT', out, '(' .. string.format('%.0f', now - window_ms), '+inf')
  local c = redis.call('HMGET', ctl, 'paused', 'cap')
  -- Admitted and not yet expired, for a waiting place only (see Place.free_slots).
  local admitted = -1
  if e.s == 'waiting' then
    admitted = redis.call('ZCOUNT', adm, '(' .. string.format('%.0f', now), '+inf')
  end
  return cjson.encode({s = e.s, q = e.q, r = e.r, p = e.p, j = e.j, l = e.l, a = e.a, x = e.x,
                       pos = position, recent = recent, paused = c[1] == '1' and 1 or 0,
                       adm = admitted, cap = tonumber(c[2]) or -1})
end
"""

# ARGV: wallet, now, sale_opens, refuse (1: no new places), touch_ms, window_ms, rank_base
JOIN = (
    PRELUDE
    + """
local wallet, now, sale_opens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local refuse, touch_ms, window_ms = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local rank_base = tonumber(ARGV[7])
local e = get(wallet)
if e then
  expire_if_lapsed(wallet, e, now)
  if e.s ~= 'expired' then
    touch(wallet, e, now, touch_ms)
    return {'ok', view(wallet, e, now, window_ms)}
  end
end
if refuse == '1' then return {'refused', ''} end
if redis.call('HGET', ctl, 'closed') == '1' then return {'closed', ''} end
local seq = redis.call('HINCRBY', ctl, 'seq', 1)
local shuffle = redis.call('HGET', ctl, 'shuffle') or 'pending'
local presale = now < sale_opens and shuffle == 'pending'
e = {s = 'waiting', q = seq, p = 0, r = 0, j = now, l = now, a = 0, x = 0}
if presale then
  e.p = 1
  redis.call('ZADD', pre, seq, wallet)
else
  e.r = rank_base + seq
  redis.call('ZADD', wait, e.r, wallet)
end
put(wallet, e)
return {'ok', view(wallet, e, now, window_ms)}
"""
)

# ARGV: wallet, now, touch (1/0), touch_ms, window_ms
PLACE = (
    PRELUDE
    + """
local wallet, now = ARGV[1], tonumber(ARGV[2])
local e = get(wallet)
if not e then return false end
expire_if_lapsed(wallet, e, now)
if ARGV[3] == '1' then touch(wallet, e, now, tonumber(ARGV[4])) end
return view(wallet, e, now, tonumber(ARGV[5]))
"""
)

# ARGV: now, sale_opens, closes, cap, rate, ttl_ms, grace_ms, max_parked, window_ms, bucket_s
ADMIT = (
    PRELUDE
    + """
local now, sale_opens, closes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl_ms, grace_ms, max_parked = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local window_ms, bucket_s = tonumber(ARGV[9]), tonumber(ARGV[10])
if now < sale_opens then return '{}' end
local c = redis.call('HMGET', ctl, 'shuffle', 'paused', 'cap', 'rate', 'bucket', 'bucket_at')
if c[1] ~= 'done' then return '{"needs_shuffle":1}' end

local expired = 0
for _, w in ipairs(redis.call('ZRANGEBYSCORE', adm, '-inf', string.format('%.0f', now))) do
  redis.call('ZREM', adm, w)
  local e = get(w)
  if e and e.s == 'admitted' then
    e.s = 'expired'
    put(w, e)
    redis.call('HINCRBY', ctl, 'expired', 1)
    expired = expired + 1
  end
end
redis.call('ZREMRANGEBYSCORE', out, '-inf', string.format('%.0f', now - window_ms))
if c[2] == '1' or now >= closes then return cjson.encode({expired = expired}) end

local cap = tonumber(c[3]) or tonumber(ARGV[4])
local rate = tonumber(c[4]) or tonumber(ARGV[5])
local burst = math.max(1, rate * bucket_s / 60)
local tokens = burst
if c[5] and c[6] then
  tokens = math.min(burst, tonumber(c[5]) + math.max(0, now - tonumber(c[6])) * rate / 60000)
end
local room = math.min(cap - redis.call('ZCARD', adm), math.floor(tokens))
local admitted, parked = 0, 0
local present_since = now - grace_ms
while admitted < room and parked < max_parked do
  local popped = redis.call('ZPOPMIN', wait, room - admitted)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local w = popped[i]
    local e = get(w)
    if e.l >= present_since then
      e.s, e.a, e.x = 'admitted', now, now + ttl_ms
      redis.call('ZADD', adm, e.x, w)
      redis.call('ZADD', out, now, tostring(e.q))
      admitted = admitted + 1
    else
      e.s = 'away'
      redis.call('HINCRBY', ctl, 'away', 1)
      parked = parked + 1
    end
    put(w, e)
  end
end
redis.call('HSET', ctl, 'bucket', tostring(tokens - admitted),
           'bucket_at', string.format('%.0f', now))
return cjson.encode({admitted = admitted, expired = expired, parked = parked})
"""
)

# ARGV: now, owner, lease_ms
BEGIN_SHUFFLE = (
    PRELUDE
    + """
local now, owner, lease_ms = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local c = redis.call('HMGET', ctl, 'shuffle', 'shuffle_started')
if c[1] == 'done' then return {'done', {}} end
if c[1] == 'running' and now - tonumber(c[2]) < lease_ms then return {'busy', {}} end
redis.call('HSET', ctl, 'shuffle', 'running', 'shuffle_owner', owner,
           'shuffle_started', string.format('%.0f', now))
return {'go', redis.call('ZRANGE', pre, 0, -1)}
"""
)

# ARGV: owner, seed, now, wallet 1, wallet 2, ... (first in line first)
COMMIT_SHUFFLE = (
    PRELUDE
    + """
local owner, seed, now = ARGV[1], ARGV[2], ARGV[3]
local c = redis.call('HMGET', ctl, 'shuffle', 'shuffle_owner')
if c[1] ~= 'running' or c[2] ~= owner then return 0 end
for i = 4, #ARGV do
  local w = ARGV[i]
  local e = get(w)
  if e then
    e.r = i - 3
    put(w, e)
    if e.s == 'waiting' then redis.call('ZADD', wait, e.r, w) end
  end
  redis.call('RPUSH', order, w)
end
redis.call('DEL', pre)
redis.call('HSET', ctl, 'shuffle', 'done', 'seed', seed, 'shuffled_at', now)
return 1
"""
)

# ARGV: wallet, until_ms
EXTEND = (
    PRELUDE
    + """
local wallet, until_ms = ARGV[1], tonumber(ARGV[2])
local e = get(wallet)
if e and e.s == 'admitted' and e.x < until_ms then
  e.x = until_ms
  put(wallet, e)
  redis.call('ZADD', adm, until_ms, wallet)
end
return 1
"""
)

# ARGV: wallet
FINISH = (
    PRELUDE
    + """
local wallet = ARGV[1]
local e = get(wallet)
if e and e.s == 'admitted' then
  e.s = 'done'
  put(wallet, e)
  redis.call('ZREM', adm, wallet)
  redis.call('HINCRBY', ctl, 'done', 1)
end
return 1
"""
)
