-- Claim a command for execution, exactly once.
-- KEYS[1] = cmd:{id}; ARGV[1] = the "executing" status, ARGV[2] = now (ms), ARGV[3] = TTL (s).
-- Returns the status the command had. Only when it had none or "pending" does the
-- caller go on to execute it; the hash then says "executing" until the outcome is
-- recorded, so a crash in between is recognised on restart and never repeated.
local prev = redis.call('HGET', KEYS[1], 'status')
if prev and prev ~= 'pending' then
  return prev
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'started_ts', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return prev or ''
