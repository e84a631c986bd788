-- Unit test of cidgate_call_end.lua without FreeSWITCH: lua5.3 test_call_end.lua
-- (run by deploy/validate.sh when a Lua interpreter is installed).
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local M = require("cidgate_call_end")

local failures, count = 0, 0
local function check(name, cond)
	count = count + 1
	if not cond then
		failures = failures + 1
		print("FAIL " .. name)
	end
end

local OK = '{"status_code":"200","body":"{\\"received\\":3,\\"recorded\\":3,\\"duplicates\\":0}","headers":[]}'

-- run(vars, reply) -> status, the curl API arguments, the log lines
local function run(vars, reply)
	local seen, logs = nil, {}
	local status = M.report(function(n) return vars[n] end,
		function(args) seen = args; return reply end,
		function(level, message) logs[#logs + 1] = level .. " " .. message end,
		function() return "1796213999000" end)
	return status, seen, logs
end

local function base()
	return {
		cidgate_call_end_url = "https://gw.example.com/api/v1/events/call-end",
		cidgate_token = "cgl_secret",
		uuid = "4a1b0c2d-0000-4000-8000-00000000abcd",
		caller_id_number = "+40 722 000 007",
		destination_number = "ion-popescu", -- after the transfer to the agent's extension
		cidgate_dnis = "0210000000",
		start_uepoch = "1796213375651234",
		answer_uepoch = "1796213380000999",
		bridge_uepoch = "1796213380100500",
		end_uepoch = "1796213440200000",
		dialed_extension = "ion-popescu",
		callee_id_number = "1001",
	}
end

local function param(args, name)
	return args and args:match("[?&]" .. name .. "=([^& ]*)")
end

-- Answered (bridged to an agent).
local s, args, logs = run(base(), OK)
check("answered: sent", s == "sent" and #logs == 0)
check("answered: call id", param(args, "call_id") == "4a1b0c2d-0000-4000-8000-00000000abcd")
check("answered: event, direction", param(args, "event") == "hangup" and param(args, "direction") == "Inbound")
check("answered: caller encoded", param(args, "caller") == "%2B40%20722%20000%20007")
check("answered: dnis as dialled, not after transfer", param(args, "dnis") == "0210000000")
check("answered: times in ms", param(args, "started_at") == "1796213375651"
	and param(args, "answered_at") == "1796213380100" and param(args, "at") == "1796213440200")
check("answered: agent", param(args, "agent") == "ion-popescu")
check("answered: token, timeouts", param(args, "token") == "cgl_secret"
	and args:find(" json secure connect%-timeout 1 timeout 2$") ~= nil)
check("answered: URL", args:find("^https://gw%.example%.com/api/v1/events/call%-end%?call_id=") ~= nil)

-- Missed: never bridged (the channel may still have been answered, by an IVR).
local v = base()
v.bridge_uepoch = "0"
s, args = run(v, OK)
check("missed: no answered_at, no agent", s == "sent" and param(args, "answered_at") == ""
	and param(args, "agent") == "")

-- No bridge times at all: the channel's answer counts.
v = base()
v.bridge_uepoch = nil
s, args = run(v, OK)
check("no bridge time: answer time", param(args, "answered_at") == "1796213380000")
v.bridge_uepoch = "_undef_" -- uuid_getvar's answer for an unset variable
v.answer_uepoch = "0"
s, args = run(v, OK)
check("uuid_getvar _undef_, unanswered", param(args, "answered_at") == "")

-- cidgate_agent wins; destination_number when cidgate_dnis is unset; recording link encoded.
v = base()
v.cidgate_agent = "Ion Popescu(1001)"
v.cidgate_dnis = nil
v.destination_number = "0210000000"
v.cidgate_recording_url = "https://rec.example.com/a b.wav?x=1&y=2"
s, args = run(v, OK)
check("agent override", param(args, "agent") == "Ion%20Popescu%281001%29")
check("dnis from destination_number", param(args, "dnis") == "0210000000")
check("recording url encoded", param(args, "recording_url") == "https%3A%2F%2Frec.example.com%2Fa%20b.wav%3Fx%3D1%26y%3D2")

-- No end time: now.
v = base()
v.end_uepoch = nil
s, args = run(v, OK)
check("end time defaults to now", param(args, "at") == "1796213999000")

-- A caller ID with control characters and '&' cannot add parameters.
v = base()
v.caller_id_number = "0722\n&token=x"
s, args = run(v, OK)
check("caller injection", param(args, "caller") == "0722%20%26token%3Dx" and select(2, args:gsub("token=", "")) == 1)

-- Failures: logged with a replay line without the token.
s, args, logs = run(base(), '{"status_code":"400","body":"{\\"error\\":\\"invalid\\",\\"field\\":\\"at\\"}"}')
check("400: failed and logged", s == "failed" and #logs == 1 and logs[1]:find("^WARNING") ~= nil
	and logs[1]:find("400") ~= nil and logs[1]:find("replay: GET https://gw.example.com/api/v1/events/call%-end%?call_id=") ~= nil)
check("log has no token", logs[1]:find("cgl_secret", 1, true) == nil)
s, args, logs = run(base(), "-ERR connect failed")
check("refused: failed", s == "failed" and logs[1]:find("-ERR connect failed", 1, true) ~= nil)
s, args, logs = run(base(), nil)
check("no reply: failed", s == "failed")
s, args, logs = run(base(), '{"status_code":"202","body":""}')
check("2xx: sent", s == "sent")

-- Not configured: nothing sent.
v = base()
v.cidgate_call_end_url = nil
s, args, logs = run(v, OK)
check("unconfigured: skipped", s == "skipped" and args == nil and logs[1]:find("^ERR") ~= nil)

check("uepoch_ms", M.uepoch_ms("0") == nil and M.uepoch_ms("12") == nil and M.uepoch_ms("1234") == "1"
	and M.uepoch_ms("x123") == nil)

print(string.format("freeswitch call end lua: %d passed, %d failed", count - failures, failures))
os.exit(failures == 0 and 0 or 1)
