-- wrk script for deploy/bench/calls.sh: POSTs call events to /api/v1/events, every
-- request with call ids never sent before (a repeated event is a cheap no-op and would
-- flatter the figure).
--
--   wrk -t 1 -c CONNS ... -s events.lua URL -- MODE TOKEN RUN RATE
--
-- MODE:
--   call4   every request one whole call: [started, pickup, hangup, recorded] of a new
--           call id (4 events)
--   single  every request one event; four consecutive requests are the started, pickup,
--           hangup and recorded of one call (so most requests find the call they belong
--           to, as a PBX reporting events as they happen does)
-- RUN    a prefix unique to this run (call ids are RUN-n)
-- RATE   requests/s to aim at (all connections together), 0 for as fast as answered.
--        Pacing uses wrk's delay(): a connection whose turn has come sends at once, so
--        when the server falls behind the run becomes closed-loop and the achieved
--        rate (RESULT's rps) shows it. Latency is measured from the actual send.
-- Half the callers are numbers the tenant knows (0720 + 6 digits below 100,000,
-- imported by calls.sh), half are not. One thread only (-t 1): the counter is per
-- thread. done() prints one RESULT line that calls.sh parses.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } cidgate_timespec;
  int clock_gettime(int clk_id, cidgate_timespec *tp);
]]
local ts = ffi.new("cidgate_timespec")
local function now_ms()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: also the events' `at`
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local EVENTS = { "started", "pickup", "hangup", "recorded" }
-- Offsets of each event from the call's start (ms): answered after 4 s, 61 s of talk.
local OFFSETS = { 0, 4000, 65000, 66000 }

function init(args)
  mode = args[1]
  token = args[2]
  run = args[3]
  rate = tonumber(args[4] or "0")
  if mode ~= "call4" and mode ~= "single" then
    error("unknown mode " .. tostring(mode))
  end
  n = 0
  -- The calls "happened" a little over a minute ago, so that every event's time is in
  -- the past and the hangup is the latest.
  t0 = math.floor(now_ms()) - 70000
  interval = (rate > 0) and (1000 / rate) or 0
  next_due = nil
  local template = wrk.format("POST", "/api/v1/events", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  })
  -- wrk.format ends the head with an empty line; the length goes before it.
  head = template:sub(1, -3)
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

local function caller(c)
  if c % 2 == 0 then
    return "0720" .. string.sub(tostring(1000000 + (c / 2) % 100000), 2)
  end
  return "0731" .. string.sub(tostring(1000000 + c % 1000000), 2)
end

local function event(c, k)
  local id = run .. "-" .. c
  local at = string.format("%.0f", t0 + OFFSETS[k] + (c % 1000))
  if k == 1 then
    return '{"call_id":"' .. id .. '","event":"started","at":' .. at ..
        ',"direction":"Inbound","caller":"' .. caller(c) .. '","dnis":"0215550100"}'
  elseif k == 2 then
    return '{"call_id":"' .. id .. '","event":"pickup","at":' .. at ..
        ',"agent":"agent ' .. (c % 200) .. '"}'
  elseif k == 3 then
    return '{"call_id":"' .. id .. '","event":"hangup","at":' .. at .. '}'
  end
  return '{"call_id":"' .. id .. '","event":"recorded","at":' .. at ..
      ',"recording_url":"https://recordings.example/' .. id .. '.mp3"}'
end

function request()
  local body
  if mode == "call4" then
    body = "[" .. event(n, 1) .. "," .. event(n, 2) .. "," .. event(n, 3) .. "," .. event(n, 4) .. "]"
  else
    body = event(math.floor(n / 4), (n % 4) + 1)
  end
  n = n + 1
  return head .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
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
