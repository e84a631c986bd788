-- wrk script for deploy/bench/run.sh: builds lookup URLs whose caller numbers follow
-- a per-thread counter, so "all-new" scenarios never ask the same number twice.
--
--   wrk -t THREADS ... -s walk.lua URL -- MODE TOKEN THREADS KBASE KSPAN UBASE USPAN [KNOWN_PER_10]
--
-- MODE:
--   cycle    known numbers KBASE .. KBASE+KSPAN-1, round robin (the cached set)
--   known    every request a different known number from that range
--   unknown  every request a different never-seeded number (073 + 7 digits) from
--            UBASE .. UBASE+USPAN-1
--   ucycle   never-seeded numbers UBASE .. UBASE+USPAN-1, round robin (unknown callers
--            after their first miss)
--   mix      KNOWN_PER_10 of every 10 requests known-new, the rest unknown-new
--   once     walk the known range once (KSPAN numbers in all), then ask /healthz only
-- Known numbers are 0720 + 6 digits (seeded by the import). Indexes are spread over
-- the range by a multiplier coprime with the span, so consecutive requests do not hit
-- neighbouring rows. done() prints one RESULT line that run.sh parses.

local thread_list = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(thread_list, thread)
end

local STRIDE = 104729 -- prime, coprime with spans made of 2s and 5s

local function spread(i, span)
  return (i * STRIDE) % span
end

function init(args)
  mode = args[1]
  token = args[2]
  nthreads = tonumber(args[3]) -- must equal wrk's -t: threads interleave the indexes
  kbase = tonumber(args[4])
  kspan = tonumber(args[5])
  ubase = tonumber(args[6])
  uspan = tonumber(args[7])
  known_per_10 = tonumber(args[8] or "3")
  -- Parameters put before the others (`type=xml&`: the XML answer of the same lookups).
  extra = args[9] or ""
  ki = tid
  ui = tid
  n = 0
  wrapped = 0
  -- Requests are built by concatenation around a template from wrk.format (cheaper
  -- than wrk.format per request, which matters: the load generator has one core).
  local template = wrk.format("GET", "/@PATH@")
  local before, after = template:match("^(.-)/@PATH@(.*)$")
  head = before .. "/api/lookup?" .. extra .. "dnid=0210000000&token=" .. token .. "&telephone="
  tail = after
  healthz = wrk.format("GET", "/healthz")
end

-- n zero-padded to 6 (known) or 7 (unknown) digits without string.format.
local function pad6(n)
  return string.sub(tostring(1000000 + n), 2)
end
local function pad7(n)
  return string.sub(tostring(10000000 + n), 2)
end

local function known_number()
  local i = ki
  ki = ki + nthreads
  if mode == "cycle" then
    return "0720" .. pad6(kbase + (i % kspan))
  end
  if i >= kspan then
    wrapped = wrapped + 1
  end
  return "0720" .. pad6(kbase + spread(i % kspan, kspan))
end

local function unknown_number()
  local i = ui
  ui = ui + nthreads
  if mode == "ucycle" then
    return "073" .. pad7(ubase + (i % uspan))
  end
  if i >= uspan then
    wrapped = wrapped + 1
  end
  return "073" .. pad7(ubase + spread(i % uspan, uspan))
end

function request()
  n = n + 1
  local number
  if mode == "cycle" or mode == "known" then
    number = known_number()
  elseif mode == "unknown" or mode == "ucycle" then
    number = unknown_number()
  elseif mode == "mix" then
    if (n % 10) < known_per_10 then
      number = known_number()
    else
      number = unknown_number()
    end
  elseif mode == "once" then
    if ki >= kspan then
      return healthz
    end
    number = known_number()
  else
    error("unknown mode " .. tostring(mode))
  end
  return head .. number .. tail
end

function done(summary, latency, requests)
  local wraps = 0
  for _, t in ipairs(thread_list) do
    wraps = wraps + (tonumber(t:get("wrapped")) or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d p999_us=%d max_us=%d non2xx=%d sockerr=%d wrapped=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout, wraps))
end
