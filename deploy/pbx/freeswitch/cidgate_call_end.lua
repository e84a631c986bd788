-- cidgate call reporting for FreeSWITCH (mod_lua + mod_curl): when a call ends, sends it to
-- cidgate's call-end endpoint. Copy next to cidgate_lookup.lua and run it from the inbound
-- channel's hangup hook (dialplan.xml does):
--   <action application="set" data="session_in_hangup_hook=true"/>
--   <action application="set" data="api_hangup_hook=lua cidgate_call_end.lua ${uuid}"/>
-- (`set`, not `export`: only the caller's channel reports; the agent's leg is part of it.)
--
-- Channel variables read:
--   cidgate_call_end_url      e.g. https://gw.example.com/api/v1/events/call-end (required)
--   cidgate_token             the tenant's token with scopes lookup,events (required)
--   cidgate_connect_timeout   seconds to connect (default 1)
--   cidgate_timeout           seconds for the whole request (default 2)
--   cidgate_dnis              the dialled number as the call arrived (set it before any
--                             transfer: destination_number changes with one)
--   cidgate_agent             optional: who answered; else dialed_extension (set by the stock
--                             Local_Extension), else callee_id_number
--   cidgate_recording_url     optional: link to the call's recording
--   and FreeSWITCH's own: uuid, caller_id_number, destination_number, start_uepoch,
--   bridge_uepoch (first bridge: a person picked up), answer_uepoch, end_uepoch
-- Sent (GET, URL-encoded; cidgate treats an empty value as absent):
--   call_id=uuid, event=hangup, direction=Inbound, caller, dnis, started_at, answered_at
--   (only when the call was bridged), at (the end), agent, recording_url; times in epoch
--   milliseconds. A call without answered_at is a missed call for cidgate.
-- The hook runs after the hangup: nobody waits for it. A report cidgate did not take is logged
-- as a WARNING with its query (without the token), to be replayed with curl; cidgate records
-- the same report once however often it arrives.

local M = {}

local function urlencode(s)
	return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- "1796213375651234" (microseconds) -> "1796213375651" (milliseconds); nil for 0 or junk.
local function uepoch_ms(v)
	if type(v) ~= "string" or not v:match("^%d+$") or v:match("^0+$") or #v < 4 then
		return nil
	end
	return v:sub(1, -4)
end
M.uepoch_ms = uepoch_ms

-- The report as a function of its inputs, so it can be tested without FreeSWITCH:
-- get(name) reads a channel variable (nil when unset), curl(args) runs the `curl` API,
-- log(level, message) logs, now_ms() is the current time in epoch milliseconds (text).
-- Returns "sent", "failed" or "skipped".
function M.report(get, curl, log, now_ms)
	local function var(name, default)
		local v = get(name)
		if v == nil or v == "" or v == "_undef_" then return default end
		return v
	end
	local url, token = var("cidgate_call_end_url"), var("cidgate_token")
	local call_id = var("uuid")
	if not url or not token or not call_id then
		log("ERR", "cidgate: set cidgate_call_end_url and cidgate_token; call end not reported\n")
		return "skipped"
	end

	local answered = uepoch_ms(var("bridge_uepoch"))
	local bridge_known = get("bridge_uepoch")
	if answered == nil and (bridge_known == nil or bridge_known == "_undef_") then
		-- A FreeSWITCH without bridge times: the channel's own answer.
		answered = uepoch_ms(var("answer_uepoch"))
	end
	local agent = ""
	if answered then
		agent = var("cidgate_agent") or var("dialed_extension") or var("callee_id_number") or ""
	end

	local fields = {
		{ "call_id", call_id },
		{ "event", "hangup" },
		{ "direction", "Inbound" },
		{ "caller", var("caller_id_number", "") },
		{ "dnis", var("cidgate_dnis") or var("destination_number", "") },
		{ "started_at", uepoch_ms(var("start_uepoch")) or "" },
		{ "answered_at", answered or "" },
		{ "at", uepoch_ms(var("end_uepoch")) or now_ms() },
		{ "agent", agent },
		{ "recording_url", var("cidgate_recording_url", "") },
	}
	local parts = {}
	for _, f in ipairs(fields) do
		-- No control characters: cidgate refuses them, and the report with them.
		parts[#parts + 1] = f[1] .. "=" .. urlencode((f[2]:gsub("%c", " ")))
	end
	local query = table.concat(parts, "&")

	-- secure: mod_curl verifies cidgate's certificate only when asked (see cidgate_lookup.lua).
	local request = string.format("%s?%s&token=%s json secure connect-timeout %d timeout %d", url, query,
		urlencode(token), tonumber(var("cidgate_connect_timeout", "1")) or 1,
		tonumber(var("cidgate_timeout", "2")) or 2)
	-- mod_curl's `json` option wraps the reply: {"status_code":"200","body":"…",…}; only the
	-- status matters here (no JSON reader needed, and cidgate_lookup.lua is not loaded, as
	-- loading it with a session would run a lookup).
	local ok, reply = pcall(curl, request)
	reply = ok and type(reply) == "string" and reply or ""
	local status = reply:match('^%s*{.-"status_code"%s*:%s*"?(%d%d%d)')
	if status and status:match("^2") then
		return "sent"
	end
	log("WARNING", string.format("cidgate: call end of %s not delivered (%s); replay: GET %s?%s\n",
		call_id, (reply:sub(1, 300):gsub("%c", " ")), url, query))
	return "failed"
end

-- Run inside FreeSWITCH: from the hangup hook (`lua cidgate_call_end.lua ${uuid}`) with the
-- session when session_in_hangup_hook=true, else by the channel's uuid. A plain `require`
-- (the tests) only gets the module table.
if freeswitch ~= nil and (session ~= nil or (argv ~= nil and argv[1] ~= nil)) then
	local api = freeswitch.API()
	local get
	if session ~= nil then
		get = function(name) return session:getVariable(name) end
	else
		local uuid = argv[1]
		get = function(name)
			if name == "uuid" then return uuid end
			return api:execute("uuid_getvar", uuid .. " " .. name)
		end
	end
	M.report(get,
		function(args) return api:execute("curl", args) end,
		function(level, message) freeswitch.consoleLog(level, message) end,
		function() return string.format("%d000", os.time()) end)
end

return M
