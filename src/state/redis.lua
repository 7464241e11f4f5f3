-- One state batch, applied atomically (a Lua script runs alone on the server).
-- ARGV[1] is the batch's time (unix ms); then each op: its code and arguments. KEYS hold every
-- key the ops touch, in op order. The answer is one entry per op.
--
-- Integers travel as decimal strings and are only added by HINCRBY (exact 64-bit integers on
-- the server): Lua numbers are doubles and are used for milliseconds only.
local now = tonumber(ARGV[1])
local a, k = 2, 1
local out = {}
local ADD = {'c', 'iu', 'cr', 'cw', 'o', 'n', 'um', 'ip', 'iv', 'nu', 'e', 's'}

-- a < b for decimal strings of non-negative integers of any length.
local function less(x, y)
  if #x ~= #y then return #x < #y end
  return x < y
end

while a <= #ARGV do
  local op = ARGV[a]
  if op == 'T' then
    -- Add to a task unless the contribution was added: KEYS totals, seen; ARGV id, idle ms,
    -- 12 additive fields, first seen, last seen.
    local tot, seen = KEYS[k], KEYS[k + 1]
    local replayed = redis.call('SADD', seen, ARGV[a + 1]) == 0
    if not replayed then
      for i = 1, 12 do
        local d = ARGV[a + 2 + i]
        if d ~= '0' then redis.call('HINCRBY', tot, ADD[i], d) end
      end
      local f, l = ARGV[a + 15], ARGV[a + 16]
      local cf = redis.call('HGET', tot, 'f')
      if f ~= '0' and (not cf or cf == '0' or less(f, cf)) then redis.call('HSET', tot, 'f', f) end
      local cl = redis.call('HGET', tot, 'l')
      if not cl or less(cl, l) then redis.call('HSET', tot, 'l', l) end
    end
    redis.call('PEXPIRE', tot, ARGV[a + 2])
    redis.call('PEXPIRE', seen, ARGV[a + 2])
    out[#out + 1] = {replayed and 1 or 0,
      redis.call('HMGET', tot, 'c', 'iu', 'cr', 'cw', 'o', 'n', 'um', 'ip', 'iv', 'nu', 'e', 's', 'f', 'l')}
    k, a = k + 2, a + 17
  elseif op == 'F' then
    -- Fire once: KEYS markers; ARGV marker, until (unix ms, '0': until the scope ends), idle ms.
    local marks, m, untilv = KEYS[k], ARGV[a + 1], ARGV[a + 2]
    local cur = redis.call('HGET', marks, m)
    if cur and (cur == '0' or tonumber(cur) > now) then
      out[#out + 1] = 0
    else
      redis.call('HSET', marks, m, untilv)
      -- The hash lives as long as its longest marker; a scope-long marker as long as its task
      -- (refreshed like the task's keys).
      local max = redis.call('HGET', marks, '_max')
      if untilv == '0' or max == '0' then
        redis.call('HSET', marks, '_max', '0')
        redis.call('PEXPIRE', marks, ARGV[a + 3])
      elseif not max or tonumber(untilv) > tonumber(max) then
        redis.call('HSET', marks, '_max', untilv)
        redis.call('PEXPIREAT', marks, untilv)
      end
      out[#out + 1] = 1
    end
    k, a = k + 1, a + 4
  elseif op == 'C' then
    -- Claim a call: KEYS claim; ARGV ttl ms.
    local ok = redis.call('SET', KEYS[k], '1', 'NX', 'PX', ARGV[a + 1])
    out[#out + 1] = ok and 1 or 0
    k, a = k + 1, a + 2
  elseif op == 'B' then
    -- Add to a budget unless the contribution was added: KEYS totals, seen; ARGV id, cost,
    -- expires at ('' never), bucket start and first counted bucket ('' for a calendar period),
    -- window ('' or 'bucket_ms:buckets'). Answers whether it was a replay and every field.
    local tot, seen = KEYS[k], KEYS[k + 1]
    local id, cost, exp, bucket, first, w =
      ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
    local field = 't'
    if bucket ~= '' then
      field = bucket
      redis.call('HSET', tot, 'w', w)
      redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. first)
      local firstn = tonumber(first)
      for _, f in ipairs(redis.call('HKEYS', tot)) do
        if f ~= 'w' and tonumber(f) < firstn then redis.call('HDEL', tot, f) end
      end
    end
    local score = bucket ~= '' and bucket or '0'
    local added = redis.call('ZADD', seen, 'NX', score, id) == 1
    if added then redis.call('HINCRBY', tot, field, cost) end
    if exp ~= '' then
      redis.call('PEXPIREAT', tot, exp)
      redis.call('PEXPIREAT', seen, exp)
    end
    out[#out + 1] = {added and 0 or 1, redis.call('HGETALL', tot)}
    k, a = k + 2, a + 7
  elseif op == 'W' then
    -- Record a window alert firing (or resolved): KEYS firing; ARGV field, since ('' clears).
    if ARGV[a + 2] == '' then
      redis.call('HDEL', KEYS[k], ARGV[a + 1])
    else
      redis.call('HSET', KEYS[k], ARGV[a + 1], ARGV[a + 2])
    end
    out[#out + 1] = 0
    k, a = k + 1, a + 3
  else
    return redis.error_reply('tollgate state script: unknown op ' .. tostring(op))
  end
end
return out
