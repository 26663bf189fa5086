"""Lua scripts that make each job hand-over atomic on the server."""

from __future__ import annotations

from core.jobs.model import ACTIVE_WAS, OVERWRITTEN_BY_END

# Scripts name keys they compute from arguments (queues found at run time), which a
# standalone Redis/Valkey allows; cluster mode is not supported.
# Every script that changes a job's state takes a revision (HINCRBY of the hash's
# `revision`) in the same atomic step, before it reports the version: the persister then
# keeps the history in revision order against versions the engine writes directly.

# Puts a job id back into its queue at the job's priority level (its hash says which),
# keeping the level's sets in step with the lists. Shared by the scripts that requeue.
_PUSH = """
local function push(q, key, id, front)
  local p = redis.call('HGET', key, 'priority')
  local list = 'heroqueue:' .. q
  if p and string.match(p, '^[1-9]$') then
    list = list .. ':p' .. p
    redis.call('SADD', 'heroagent:queues:p' .. p, q)
    redis.call('SADD', 'heroagent:levels', p)
  end
  if front then redis.call('LPUSH', list, id) else redis.call('RPUSH', list, id) end
end
"""

# KEYS: queues, doorbell, rr, fence, paused, processing, limits, rate next, levels
# ARGV: worker, now, count, and optionally "server": `now` is then the server's time (a
# FETCH queued behind a blocking pop runs later than it was sent).
# Hands out up to `count` jobs, the highest priority level first and FIFO within a level.
# Within a level it goes one queue after the other: `rr` (suffixed `:p<N>` above level 0)
# holds the place after the last queue served, across calls and workers, so with equal
# load every queue of a level gets its turn (true round robin; no queue waits while
# another is served again).
# A queue with limits (the `limits` hash; empty when none is set, which is all this
# costs then) is held while `max_active` of its jobs are active or until its rate allows
# the next start; a held queue is passed over like an empty one, its jobs stay queued.
# The active count is the queue's active set, pruned of jobs no longer active before it
# may hold the queue, so an entry that outlived its job (a hand-ended one) never holds.
# Rate times are the server's clock, the same for every worker on every machine.
# A job handed out is marked `unreported`: its `active` version is not on the stream
# yet. It rides on the end's entry (see COMPLETE), or STARTED reports it while the job
# runs, so a short job costs one stream entry, not two.
# Returns a flat array: first the seconds until a rate-held queue may start again (0 when
# none is), then for each job its id, queue, fence, the number of hash fields that
# follow, then those fields. When it finds fewer than asked, every queue is empty or held
# at this instant, so it also clears the doorbell inside the same atomic step: no wake-up
# can be lost between "found nothing" and "went to sleep" (a held queue is woken by the
# end of one of its jobs, which rings, or by the wait this returns).
FETCH = """
local want = tonumber(ARGV[3])
local now = ARGV[2]
if ARGV[4] == 'server' then
  local t = redis.call('TIME')
  now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
local out = {0}
local got = 0
local lim = {}
local raw = redis.call('HGETALL', KEYS[7])
for i = 1, #raw, 2 do
  -- A value that is not ours (written by hand) limits nothing rather than stop every fetch.
  local ok, l = pcall(cjson.decode, raw[i + 1])
  if ok and type(l) == 'table' then lim[raw[i]] = l end
end
local room = {}
local clock = false
local wait = false

local function may_start(q)
  local l = lim[q]
  if not l then return true end
  if l.max_active then
    local r = room[q]
    if r == nil then
      local set = 'heroagent:active:' .. q
      local n = redis.call('SCARD', set)
      if n >= l.max_active then
        for _, id in ipairs(redis.call('SMEMBERS', set)) do
          if redis.call('HGET', 'herojobs:' .. q .. ':' .. id, 'status') ~= 'active' then
            redis.call('SREM', set, id)
            n = n - 1
          end
        end
      end
      r = l.max_active - n
      room[q] = r
    end
    if r <= 0 then return false end
  end
  if l.interval then
    if not clock then
      local t = redis.call('TIME')
      clock = tonumber(t[1]) + tonumber(t[2]) / 1000000
    end
    local left = tonumber(redis.call('HGET', KEYS[8], q) or '0') - clock
    if left > 0 then
      if not wait or left < wait then wait = left end
      return false
    end
  end
  return true
end

local function started(q, id)
  local l = lim[q]
  if not l then return end
  if l.max_active then
    room[q] = room[q] - 1
    redis.call('SADD', 'heroagent:active:' .. q, id)
  end
  if l.interval then
    redis.call('HSET', KEYS[8], q, string.format('%.6f', clock + l.interval))
  end
end

local paused = {}
for _, q in ipairs(redis.call('SMEMBERS', KEYS[5])) do paused[q] = true end
local levels = {}
for _, p in ipairs(redis.call('SMEMBERS', KEYS[9])) do levels[#levels + 1] = tonumber(p) end
table.sort(levels, function(a, b) return a > b end)
levels[#levels + 1] = 0

for _, p in ipairs(levels) do
  if got >= want then break end
  local members, rr, suffix = KEYS[1], KEYS[3], ''
  if p > 0 then
    members, rr, suffix = 'heroagent:queues:p' .. p, KEYS[3] .. ':p' .. p, ':p' .. p
  end
  local queues = redis.call('SMEMBERS', members)
  local n = #queues
  if n > 0 then
    table.sort(queues)
    local at = tonumber(redis.call('GET', rr) or '0') % n
    local passed = {}
    local misses = 0
    while got < want and misses < n do
      local q = queues[at + 1]
      at = (at + 1) % n
      local id = false
      if not passed[q] and not paused[q] and may_start(q) then
        local list = 'heroqueue:' .. q .. suffix
        id = redis.call('LMOVE', list, KEYS[6], 'LEFT', 'LEFT')
        while id do
          if redis.call('EXISTS', 'herojobs:' .. q .. ':' .. id) == 1 then break end
          -- An id without its job (deleted meanwhile): drop it and take the next.
          redis.call('LREM', KEYS[6], 1, id)
          id = redis.call('LMOVE', list, KEYS[6], 'LEFT', 'LEFT')
        end
        -- A level's set holds only queues that may have jobs there: pushes add them back.
        if not id and p > 0 then redis.call('SREM', members, q) end
      end
      if id then
        local key = 'herojobs:' .. q .. ':' .. id
        local fence = redis.call('INCR', KEYS[4])
        redis.call('HINCRBY', key, 'attempts', 1)
        -- Each attempt reports its own progress: the last one's would mislead.
        redis.call('HDEL', key, 'progress', 'progress_message')
        redis.call('HSET', key, 'status', 'active', 'time_start', now,
                   'worker', ARGV[1], 'fence', fence, 'unreported', '1')
        redis.call('HINCRBY', key, 'revision', 1)
        started(q, id)
        local fields = redis.call('HGETALL', key)
        out[#out + 1] = id
        out[#out + 1] = q
        out[#out + 1] = tostring(fence)
        out[#out + 1] = tostring(#fields)
        for _, v in ipairs(fields) do out[#out + 1] = v end
        got = got + 1
        misses = 0
        redis.call('SET', rr, at)
      else
        passed[q] = true
        misses = misses + 1
      end
    end
    if p > 0 and redis.call('SCARD', members) == 0 then redis.call('SREM', KEYS[9], p) end
  end
end
if got < want then redis.call('DEL', KEYS[2]) end
if wait then out[1] = string.format('%.6f', math.max(wait, 0.001)) end
return out
"""

# KEYS: locations, queues, doorbell, scheduled, schedule bell, the highest id queued
# ARGV[1]: one JSON array with, for each job, five values: its hash fields (all but its
# id) as an object of strings, its queue ("<circle>:<topic>"), where it goes: "1" into
# its queue now (at its priority level), "" into the scheduled set (it waits for a time),
# "-" nowhere (it waits for its parents, whose ends release it); its run_at; its
# priority ("0"-"9"); and a sixth, "1", for a job queued again from its stored version
# (a restore), which only goes in while the server holds no hash of it.
# ARGV[2]: the jobs' ids, a JSON array of strings in the same order. Optional ARGV[3]
# and ARGV[4]: a channel and a message published once the batch is in place, so a
# submit costs one round trip, not a second one for its events.
# Stores and queues a batch of new jobs in one atomic step. The batch travels as one
# JSON text, decoded here: packing the HSET arguments of each job in the client cost
# more than the rest of a batch together. The ids come apart from the rest, so
# everything else is encoded before OurDB hands them out. Each hash is written afresh
# (its fields carry the revision this step takes): a field at its default is absent (it
# reads back as that default), and a requeued job's old hash keeps nothing of its last
# run. Each list, set and hash the batch adds to takes one command for all its jobs.
ENQUEUE = """
local items = cjson.decode(ARGV[1])
local ids = cjson.decode(ARGV[2])
local places = {}
local queues = {}
local lists = {}
local listed = {}
local levels = {}
local rung = 0
local due = false
local top = 0
for i, item in ipairs(items) do
  local id, q = ids[i], item[2]
  local key = 'herojobs:' .. q .. ':' .. id
  -- A restore's item (item[6] '1') leaves a job whose hash is there: a cancel, or
  -- whatever else got to it since the restore read it, has the last word.
  if item[6] ~= '1' or redis.call('EXISTS', key) == 0 then
    local n = tonumber(id)
    if n > top then top = n end
    local flat = {'job_id', id}
    for name, value in pairs(item[1]) do
      flat[#flat + 1] = name
      flat[#flat + 1] = value
    end
    redis.call('DEL', key)
    redis.call('HSET', key, unpack(flat))
    places[#places + 1] = id
    places[#places + 1] = q
    queues[q] = true
    if item[3] == '1' then
      -- Its level's list, as `push` finds it from the hash's priority.
      local list = 'heroqueue:' .. q
      local p = item[5]
      if p and string.match(p, '^[1-9]$') then
        list = list .. ':p' .. p
        levels[p] = levels[p] or {}
        levels[p][q] = true
      end
      if not listed[list] then
        listed[list] = {}
        lists[#lists + 1] = list
      end
      local ids_of = listed[list]
      ids_of[#ids_of + 1] = id
      rung = rung + 1
    elseif item[3] == '' then
      redis.call('ZADD', KEYS[4], item[4], id)
      due = true
    end
  end
end
-- In slices: unpack puts every value on Lua's stack, which holds some thousands.
local function in_slices(command, key, values)
  for first = 1, #values, 1000 do
    redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
  end
end
local function names_of(set)
  local names = {}
  for name in pairs(set) do names[#names + 1] = name end
  return names
end
in_slices('HSET', KEYS[1], places)
in_slices('SADD', KEYS[2], names_of(queues))
for _, list in ipairs(lists) do in_slices('RPUSH', list, listed[list]) end
for p, at in pairs(levels) do
  in_slices('SADD', 'heroagent:queues:p' .. p, names_of(at))
  redis.call('SADD', 'heroagent:levels', p)
end
local tokens = {}
for n = 1, rung do tokens[n] = '1' end
in_slices('RPUSH', KEYS[3], tokens)
if due then
  -- One token is enough: the promoter re-reads the earliest due time.
  redis.call('RPUSH', KEYS[5], 1)
end
if top > tonumber(redis.call('GET', KEYS[6]) or '0') then redis.call('SET', KEYS[6], top) end
if ARGV[4] then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return rung
"""

# complete(KEYS, ARGV) records one outcome; its KEYS and ARGV are that outcome's, not
# the script's:
# KEYS: job key, processing, stream, scheduled, schedule bell, queue's active set, doorbell
# ARGV: id, fence, status, result, error, now, log_lines(json), error_kind, run_at
# Returns 1 when recorded, 0 when the job is no longer this worker's (fenced off).
# Either way the worker's entry leaves its processing list: a fenced-off job is not
# this worker's to hold, and a stale entry would show a busy slot that is free.
# A `scheduled` outcome is a failed attempt to run again at `run_at`: in the same step
# the job joins the scheduled set (it stays live in Redis) and the promoter is woken.
# A job whose `active` version is unreported (see FETCH) has it carried by the end's
# entry: what the end writes over, read first, goes in one more field (see
# `model.active_before`), so the persister stores both versions from one entry.
_COMPLETE_ONE = (
    """
local function complete(KEYS, ARGV)
local held = redis.call('LREM', KEYS[2], 1, ARGV[1])
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[2] then return 0 end
if held == 0 then return 0 end
local was = redis.call('HMGET', KEYS[1], 'unreported', """
    + ", ".join(f"'{name}'" for name in OVERWRITTEN_BY_END)
    + """)
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'result', ARGV[4], 'error', ARGV[5],
           'time_end', ARGV[6], 'log_lines', ARGV[7], 'error_kind', ARGV[8])
redis.call('HDEL', KEYS[1], 'fence', 'unreported')
-- The end of a job of a queue held at max_active lets the next one start: wake a worker.
if redis.call('SREM', KEYS[6], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[7], '1') end
if ARGV[3] == 'scheduled' then
  -- Other outcomes keep the run_at the attempt was due at, so lateness stays visible.
  redis.call('HSET', KEYS[1], 'run_at', ARGV[9])
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[1])
  redis.call('RPUSH', KEYS[5], '1')
end
redis.call('HINCRBY', KEYS[1], 'revision', 1)
local fields = redis.call('HGETALL', KEYS[1])
if was[1] then
  table.remove(was, 1)
  fields[#fields + 1] = '"""
    + ACTIVE_WAS
    + """'
  fields[#fields + 1] = cjson.encode(was)
end
redis.call('XADD', KEYS[3], '*', unpack(fields))
return 1
end
"""
)

# ARGV: outcomes (JSON: [[[complete's KEYS], [complete's ARGV]], ...])
# Records a batch of outcomes in one call, each fenced on its own, in order; returns
# complete's answer for each. One JSON argument for the batch: packing sixteen
# arguments per outcome in the client cost more than the script's work.
COMPLETE = (
    _COMPLETE_ONE
    + """
local out = {}
for i, outcome in ipairs(cjson.decode(ARGV[1])) do out[i] = complete(outcome[1], outcome[2]) end
return out
"""
)

# KEYS: stream; ARGV: jobs (JSON: [[job key, fence], ...])
# Reports the `active` version of jobs still running some time after they started (see
# FETCH), each only while it is still this worker's and unreported: a job that ended
# meanwhile had it carried by its end. Returns how many it reported.
STARTED = """
local reported = 0
for _, job in ipairs(cjson.decode(ARGV[1])) do
  local now = redis.call('HMGET', job[1], 'fence', 'unreported')
  if now[1] == job[2] and now[2] then
    redis.call('HDEL', job[1], 'unreported')
    redis.call('XADD', KEYS[1], '*', unpack(redis.call('HGETALL', job[1])))
    reported = reported + 1
  end
end
return reported
"""

# KEYS: job key
# ARGV: fence, fraction, message, channel, events message
# Keeps a running job's progress on its hash and announces it, only while the job is
# still this worker's. Returns 1 when recorded, 0 when fenced off.
PROGRESS = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'progress_message', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""

# hand_back(id, worker, jobloc, doorbell, stream, max_attempts, now): a job `worker`
# holds goes back to the front of its queue at its level (or fails as worker_lost once it has used
# `max_attempts`), reported on the stream. Only a job this worker still holds: a stale
# id may be someone else's by now. Returns 1 when it handed the job back, else 0.
_HAND_BACK = """
local function hand_back(id, worker, jobloc, doorbell, stream, max_attempts, now)
  local q = redis.call('HGET', jobloc, id)
  local key = q and ('herojobs:' .. q .. ':' .. id)
  if not key or redis.call('HGET', key, 'status') ~= 'active'
      or redis.call('HGET', key, 'worker') ~= worker then
    return 0
  end
  if redis.call('HDEL', key, 'unreported') == 1 then
    -- It ran, and its history shows that, before the version that hands it back.
    redis.call('XADD', stream, '*', unpack(redis.call('HGETALL', key)))
  end
  local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
  redis.call('HDEL', key, 'fence', 'worker')
  redis.call('SREM', 'heroagent:active:' .. q, id)
  if attempts >= max_attempts then
    redis.call('HSET', key, 'status', 'error', 'time_end', now,
               'error', 'worker lost ' .. attempts .. ' times', 'error_kind', 'worker_lost')
  else
    redis.call('HSET', key, 'status', 'new', 'time_start', '0')
    push(q, key, id, true)
  end
  -- Handed back, or ended: either way a slot of a max_active queue is free.
  redis.call('RPUSH', doorbell, '1')
  redis.call('HINCRBY', key, 'revision', 1)
  redis.call('XADD', stream, '*', unpack(redis.call('HGETALL', key)))
  return 1
end
"""

# KEYS: heartbeat, workers, record, records
# ARGV: worker, lease_ms, record_ms, host, pid, slots, busy, version
# A watchdog's lease, its registration and its record for people, in one call. Times on
# the record are the server's (seconds), so readers on any machine compare them with the
# server's clock, never with their own.
HEARTBEAT = """
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('SET', KEYS[1], 1, 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('HSETNX', KEYS[3], 'started', now)
redis.call('HSET', KEYS[3], 'host', ARGV[4], 'pid', ARGV[5], 'slots', ARGV[6],
           'busy', ARGV[7], 'version', ARGV[8], 'heartbeat', now, 'lease_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
"""

# KEYS: heartbeat, processing, workers, jobloc, doorbell, stream
# ARGV: worker, max_attempts, now
# Returns the number of jobs handed back (or failed), or -1 when the worker is alive.
REAP = (
    _PUSH
    + _HAND_BACK
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local handled = 0
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  handled = handled + hand_back(id, ARGV[1], KEYS[4], KEYS[5], KEYS[6], tonumber(ARGV[2]), ARGV[3])
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return handled
"""
)

# KEYS: processing, jobloc, doorbell, stream
# ARGV: worker, now, id...
# A live worker hands back jobs its processing list shows that it does not run: after a
# failover (or a restart from the AOF) the server may lack the worker's report of their
# end. Each goes back to its queue, as from a lost worker, without using up an attempt
# limit (the attempt ended; its report was lost). Returns how many went back.
RELEASE_ORPHANS = (
    _PUSH
    + _HAND_BACK
    + """
local handed = 0
for i = 3, #ARGV do
  if redis.call('LREM', KEYS[1], 0, ARGV[i]) > 0 then
    handed = handed + hand_back(ARGV[i], ARGV[1], KEYS[2], KEYS[3], KEYS[4], math.huge, ARGV[2])
  end
end
return handed
"""
)

# Lua functions shared by the scripts that settle a dependant (a job waiting for its
# parents): `heroagent:parents:<id>` holds the parents it still waits for,
# `heroagent:children:<id>` the dependants waiting for a job. Both scripts that change
# them run atomically, so a dependant is released (or failed) exactly once however
# many of its parents end at the same instant.
# release_or_wait: queue the dependant when it waits for nobody, else show whom it waits for.
# fail: end the dependant in error because `parent` did; its version goes to the stream,
# so the persister stores it and, in turn, settles its own dependants (the cascade).
_DEPENDANTS = """
local function release_or_wait(key, id, q, doorbell, now)
  redis.call('HINCRBY', key, 'revision', 1)
  local pend = 'heroagent:parents:' .. id
  local left = redis.call('SMEMBERS', pend)
  if #left == 0 then
    -- Parents met, but its own time (delay or run_at) is still ahead: it waits for that.
    local run_at = tonumber(redis.call('HGET', key, 'run_at') or '0') or 0
    if run_at > tonumber(now) then
      redis.call('HSET', key, 'wait_for', '')
      redis.call('ZADD', 'heroagent:scheduled', run_at, id)
      redis.call('RPUSH', 'heroagent:schedbell', '1')
      return
    end
    redis.call('HSET', key, 'status', 'new', 'wait_for', '')
    push(q, key, id, false)
    redis.call('RPUSH', doorbell, '1')
    return
  end
  table.sort(left, function(a, b) return tonumber(a) < tonumber(b) end)
  redis.call('HSET', key, 'wait_for', table.concat(left, ','))
end
local function fail(key, id, parent, now, stream)
  redis.call('DEL', 'heroagent:parents:' .. id)
  redis.call('HSET', key, 'status', 'error', 'wait_for', '', 'time_end', now,
             'error', 'dependency failed: parent job ' .. parent .. ' ended in error',
             'error_kind', 'dependency_failed')
  redis.call('HINCRBY', key, 'revision', 1)
  redis.call('XADD', stream, '*', unpack(redis.call('HGETALL', key)))
end
local function waiting_key(jobloc, id)
  local q = redis.call('HGET', jobloc, id)
  if not q then return false, false end
  local key = 'herojobs:' .. q .. ':' .. id
  if redis.call('HGET', key, 'status') ~= 'scheduled' then return false, false end
  local w = redis.call('HGET', key, 'wait_for')
  if not w or w == '' then return false, false end
  return key, q
end
"""

# KEYS: jobloc, stream, doorbell
# ARGV: group, ended (JSON: [[id, job key, ended status persisted, unique claim key or '',
#       unique_for ms, 1 when it had parents, its revision], ...]), entries (JSON: [stream
#       entry id, ...]), events message ('' for none), channel, now
# Everything Redis does once a persisted batch is durable in OurDB, in one call: settles
# each ended job's dependants and gives up its unique key (or lets it expire after
# `unique_for`), drops it (unless it was requeued meanwhile: its hash shows another
# status, or a later revision than the version stored), acknowledges and deletes
# the batch's stream entries, and publishes the batch's events message.
# The lists travel as one JSON argument each: the client then encodes a handful of
# arguments per batch, not several per job. Returns how many jobs it dropped.
PERSISTED = (
    _PUSH
    + _DEPENDANTS
    + """
local dropped = 0
for _, job in ipairs(cjson.decode(ARGV[2])) do
  local now = redis.call('HMGET', job[2], 'status', 'revision')
  if now[1] == job[3] and tonumber(now[2] or '0') <= job[7] then
    local id = job[1]
    local children = redis.call('SMEMBERS', 'heroagent:children:' .. id)
    if #children > 0 then
      redis.call('DEL', 'heroagent:children:' .. id)
      for _, child in ipairs(children) do
        if redis.call('SREM', 'heroagent:parents:' .. child, id) == 1 then
          local key, q = waiting_key(KEYS[1], child)
          if key then
            if job[3] == 'error' and redis.call('HGET', key, 'on_parent_error') ~= 'run' then
              fail(key, child, id, ARGV[6], KEYS[2])
            else
              release_or_wait(key, child, q, KEYS[3], ARGV[6])
            end
          end
        end
      end
    end
    if job[6] == 1 then redis.call('DEL', 'heroagent:parents:' .. id) end
    if job[4] ~= '' and redis.call('GET', job[4]) == id then
      if job[5] > 0 then redis.call('PEXPIRE', job[4], job[5])
      else redis.call('DEL', job[4]) end
    end
    redis.call('DEL', job[2])
    redis.call('HDEL', KEYS[1], id)
    dropped = dropped + 1
  end
end
local entries = cjson.decode(ARGV[3])
if #entries > 0 then
  redis.call('XACK', KEYS[2], ARGV[1], unpack(entries))
  redis.call('XDEL', KEYS[2], unpack(entries))
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[4]) end
return dropped
"""
)

# KEYS: jobloc, stream, doorbell
# ARGV: dependant id, parents (JSON: [[parent id, its OurDB status or ''], ...]), now
# Ties a waiting dependant (already stored in Redis) to its parents. A parent whose hash
# is live and not ended takes the dependant into its children: the PERSISTED step of its
# end settles it. One live and ended, or gone from Redis with a known status, is settled
# here: done counts as met, error fails the dependant (unless on_parent_error is "run").
# A parent gone from Redis without a known status stays pending and is returned: the
# caller reads its final status from OurDB (durable before its hash was dropped) and
# calls again with it. Returns those unknown parent ids.
DEPEND = (
    _PUSH
    + _DEPENDANTS
    + """
local child = ARGV[1]
local key, q = waiting_key(KEYS[1], child)
if not key then return {} end
local pend = 'heroagent:parents:' .. child
local unknown = {}
local failed = false
for _, p in ipairs(cjson.decode(ARGV[2])) do
  local pid = tostring(p[1])
  local pq = redis.call('HGET', KEYS[1], pid)
  local st = pq and redis.call('HGET', 'herojobs:' .. pq .. ':' .. pid, 'status')
  if st and st ~= 'done' and st ~= 'error' then
    redis.call('SADD', 'heroagent:children:' .. pid, child)
    redis.call('SADD', pend, pid)
  else
    st = st or p[2]
    if st == 'done' or st == 'error' then
      redis.call('SREM', pend, pid)
      if st == 'error' and not failed
          and redis.call('HGET', key, 'on_parent_error') ~= 'run' then
        failed = pid
      end
    else
      redis.call('SADD', pend, pid)
      unknown[#unknown + 1] = pid
    end
  end
end
if failed then
  fail(key, child, failed, ARGV[3], KEYS[2])
  return {}
end
if #unknown == 0 then release_or_wait(key, child, q, KEYS[3], ARGV[3]) end
return unknown
"""
)

# KEYS: claim; ARGV: placeholder, ttl ms
# Takes a unique key for a submit about to store its job, or returns its holder: a job
# id, or another submit's placeholder. The placeholder expires, so a submitter that dies
# before storing its job cannot hold the key for ever.
CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# KEYS: claim; ARGV: placeholder, job id (or '' to give the claim up)
# Turns this submit's placeholder into its stored job's id, held until the job ends.
CLAIMED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: scheduled, jobloc, doorbell, schedule bell
# ARGV: now, limit
# Moves up to `limit` due jobs to the back of their queues (at their priority levels)
# and rings the doorbell for each. ZREM is the claim: an id leaves the set once, so
# however many promoters race, a job is queued once. Ids whose job is gone or no
# longer scheduled (cancelled meanwhile) are just dropped. The bell is cleared first,
# in the same atomic step, so a job scheduled after this call rings it again.
# Returns {moved, earliest due score left (or false)}.
PROMOTE = (
    _PUSH
    + """
redis.call('DEL', KEYS[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local q = redis.call('HGET', KEYS[2], id)
  local key = q and ('herojobs:' .. q .. ':' .. id)
  if key and redis.call('HGET', key, 'status') == 'scheduled' then
    redis.call('HSET', key, 'status', 'new')
    redis.call('HINCRBY', key, 'revision', 1)
    push(q, key, id, false)
    redis.call('RPUSH', KEYS[3], '1')
    moved = moved + 1
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {moved, first[2] or false}
"""
)

# KEYS: job key; ARGV: revision
# Raises a live job's revision to at least ARGV[1], the one OurDB stored last: a server
# that came back from an older copy of its data (a replica, an AOF) counts from below
# it, and its next versions would read as older than the stored one. A hash gone
# meanwhile stays gone. Returns 1 when it raised the count.
RAISE_REVISION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'revision') or '0') >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'revision', ARGV[1])
return 1
"""

# KEYS: job key, queue, active set, doorbell, scheduled
# ARGV: id, status, cancel channel
# Ends a job by hand (a cancel, done or error set by someone), unless it has ended
# already: checked in the same step, so a run that ends just before keeps its end alone
# (its version may still be on its way to the history). Drops the fence (the worker
# that holds it can no longer complete it), frees its slot of a max_active queue, and
# tells whichever watchdog runs it to stop. Returns {0, status} when it had ended, else
# {1, the hash before the change, 1 when its `active` version was unreported, revision}.
END_BY_HAND = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'error' then return {0, status} end
local before = redis.call('HGETALL', KEYS[1])
local unreported = redis.call('HDEL', KEYS[1], 'unreported')
local revision = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('HDEL', KEYS[1], 'fence', 'worker')
redis.call('LREM', KEYS[2], 0, ARGV[1])
if status == 'active' then
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('RPUSH', KEYS[4], 1)
end
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2])
-- Sent for a job read as queued too: a FETCH may have handed it out since the read.
redis.call('PUBLISH', ARGV[3], ARGV[1])
return {1, before, unreported, revision}
"""

# KEYS: lock; ARGV: token, ttl ms
# Takes the promoter lock, or renews it when this token holds it. Returns 1 when held.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: lock; ARGV: token. Gives the lock up, only when this token holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: limits, workers, jobloc, doorbell, rate next
# ARGV: queue ("<circle>:<topic>"), limits (JSON; '' to clear)
# Sets or clears one queue's limits. With max_active, its active set is rebuilt from
# what the workers' processing lists hold now (the truth of what runs), in the same
# atomic step as the limit, so fetches after it count every running job. Rings the
# doorbell once per worker: a raised limit may let every one of them start jobs.
# Returns how many of the queue's jobs are active now (0 without max_active).
SET_LIMITS = """
local q = ARGV[1]
local set = 'heroagent:active:' .. q
redis.call('DEL', set)
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], q)
  redis.call('HDEL', KEYS[5], q)
else
  redis.call('HSET', KEYS[1], q, ARGV[2])
  local l = cjson.decode(ARGV[2])
  if not l.interval then redis.call('HDEL', KEYS[5], q) end
  if l.max_active then
    for _, w in ipairs(redis.call('SMEMBERS', KEYS[2])) do
      for _, id in ipairs(redis.call('LRANGE', 'heroagent:processing:' .. w, 0, -1)) do
        if redis.call('HGET', KEYS[3], id) == q
            and redis.call('HGET', 'herojobs:' .. q .. ':' .. id, 'status') == 'active' then
          redis.call('SADD', set, id)
        end
      end
    end
  end
end
local workers = redis.call('SCARD', KEYS[2])
for _ = 1, math.max(workers, 1) do redis.call('RPUSH', KEYS[4], '1') end
return redis.call('SCARD', set)
"""
