-- wrk script for deploy/bench/calls.sh: GETs the request paths listed in a file (one a
-- line, e.g. CDR pages or activecallkey lookups), in a random order, with a Bearer token.
--
--   wrk -t 1 -c CONNS ... -s paths.lua URL -- FILE TOKEN RATE SEED
--
-- RATE   requests/s to aim at (all connections together), 0 for as fast as answered;
--        paced like events.lua (a connection whose turn has come sends at once).
-- SEED   for the random order (runs with different seeds ask different paths first).
-- done() prints one RESULT line that calls.sh parses.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } cidgate_timespec;
  int clock_gettime(int clk_id, cidgate_timespec *tp);
]]
local ts = ffi.new("cidgate_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

function init(args)
  local file, token = args[1], args[2]
  local rate = tonumber(args[3] or "0")
  math.randomseed(tonumber(args[4] or "1"))
  local head = wrk.format("GET", "/@PATH@", { ["Authorization"] = "Bearer " .. token })
  local before, after = head:match("^(.-)/@PATH@(.*)$")
  requests = {}
  for line in io.lines(file) do
    if #line > 0 then
      requests[#requests + 1] = before .. line .. after
    end
  end
  if #requests == 0 then
    error("no paths in " .. file)
  end
  interval = (rate > 0) and (1000 / rate) or 0
  next_due = nil
end

function delay()
  if interval == 0 then
    return 0
  end
  local now = now_ms()
  if next_due == nil then
    next_due = now
  end
  local due = next_due
  next_due = next_due + interval
  if due <= now then
    return 0
  end
  return math.floor(due - now)
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d p999_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
