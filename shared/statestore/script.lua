-- statestore: write one batch of samples of one hash family (DESIGN §4) atomically.
-- Loaded once with SCRIPT LOAD and called with EVALSHA, one call per batch, several
-- calls pipelined per round trip.
--
-- KEYS[1]  value hash: point_id -> value. Also the pub/sub channel and the change
--          stream entry's "key".
-- KEYS[2]  timestamp hash: point_id -> Unix ms
-- KEYS[3]  raw hash: point_id -> raw value
-- KEYS[4]  quality hash: point_id -> quality, holding only points that are not good
-- KEYS[5]  change stream (voltage:changes)
-- A key whose section below is empty is never touched (the caller passes "" then).
--
-- ARGV[1]  the change message (JSON), published on KEYS[1] and appended to KEYS[5]
-- ARGV[2]  the change stream's approximate MAXLEN
-- ARGV[3]  number of ARGV entries in the values section
-- ARGV[4]  ... in the timestamps section
-- ARGV[5]  ... in the raw section
-- ARGV[6]  ... in the bad-quality section
-- ARGV[7]  ... in the good-quality section
-- ARGV[8..] the five sections, back to back:
--   values     point_id, value, point_id, value, ...    HSET KEYS[1]
--   timestamps point_id, unix_ms, ...                   HSET KEYS[2]
--   raw        point_id, raw, ...                       HSET KEYS[3]
--   bad        point_id, quality, ...                   HSET KEYS[4]
--   good       point_id, point_id, ...                  HDEL KEYS[4]
--
-- The caller has already formatted and flattened everything, so this script does
-- no per-point work: each section is handed to one command per CHUNK entries with
-- unpack, and CHUNK keeps every call well inside Lua's C stack limit
-- (LUAI_MAXCSTACK = 8000).

local CHUNK = 4000 -- even, so a chunk never splits a field from its value

local function apply(cmd, key, first, n)
  local last = first + n - 1
  while first <= last do
    local to = first + CHUNK - 1
    if to > last then to = last end
    redis.call(cmd, key, unpack(ARGV, first, to))
    first = to + 1
  end
end

local pos = 8
local n = tonumber(ARGV[3])
if n > 0 then apply('HSET', KEYS[1], pos, n) end
pos = pos + n

n = tonumber(ARGV[4])
if n > 0 then apply('HSET', KEYS[2], pos, n) end
pos = pos + n

n = tonumber(ARGV[5])
if n > 0 then apply('HSET', KEYS[3], pos, n) end
pos = pos + n

n = tonumber(ARGV[6])
if n > 0 then apply('HSET', KEYS[4], pos, n) end
pos = pos + n

-- Most batches are all good and most quality hashes are empty: one EXISTS spares
-- the HDEL of every point.
n = tonumber(ARGV[7])
if n > 0 and redis.call('EXISTS', KEYS[4]) == 1 then apply('HDEL', KEYS[4], pos, n) end

redis.call('PUBLISH', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], '*', 'key', KEYS[1], 'm', ARGV[1])
return 1
