-- cidgate caller lookup for FreeSWITCH (mod_lua + mod_curl). Copy to the scripts directory
-- (e.g. /usr/share/freeswitch/scripts/) and call it from the dialplan, see dialplan.xml.
--
-- Channel variables read:
--   cidgate_url               lookup endpoint, e.g. https://gw.example.com/api/lookup (required)
--   cidgate_token             the tenant's token with scopes lookup,events (required)
--   cidgate_connect_timeout   seconds to connect (default 1)
--   cidgate_timeout           seconds for the whole request (default 2)
--   cidgate_default_target    extension for unknown callers and failures (default "support")
--   cidgate_default_context   its dialplan context (default "default")
--   cidgate_screening_route   the tenant's --spam-route (default "screening")
--   cidgate_screening_target  extension for screened callers (default "screening"), in
--                             cidgate_default_context
--   caller trust (docs/trust.md), passed on as verstat and attest:
--     cidgate_verstat / cidgate_attest   set them yourself to override what follows;
--     sip_P-Asserted-Identity (or sip_i_p-asserted-identity): its verstat parameter;
--     sip_i_identity (sofia profile parse-all-invite-headers=true): the Identity header's
--     PASSporT, whose "attest" claim is the attestation level
-- Channel variables set:
--   cidgate_status            found | unknown | screened | failed
--   cidgate_id, cidgate_name, cidgate_direct_line, cidgate_backend_link,
--   cidgate_queue_position, cidgate_route_identifier, cidgate_outbound_number,
--   cidgate_language, cidgate_external_id           (unset when null)
--   effective_caller_id_name  the CRM name (only when found)
--   cidgate_transfer_to       the direct line's extension when it is one (SIP/101 -> 101),
--                             else cidgate_default_target
--   cidgate_transfer_context  cidgate_agents for a direct line (the only context that dials
--                             one, cidgate_agents.xml), else cidgate_default_context
-- The request carries call_id=${uuid}: cidgate links the lookup to the call that
-- cidgate_call_end.lua reports when the call ends.
-- The lookup never fails the call: any error leaves the caller ID alone and routes to the
-- default target. No library beyond mod_lua is needed (a small JSON reader is included).

local M = {}

local NULL = setmetatable({}, { __tostring = function() return "null" end })
M.NULL = NULL

local function utf8_char(cp)
	if cp < 0x80 then
		return string.char(cp)
	elseif cp < 0x800 then
		return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
	elseif cp < 0x10000 then
		return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
	end
	return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
		0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

-- Decodes a JSON text. Numbers are kept as their text (a CRM id 12345 stays "12345"), null
-- is M.NULL. Raises an error on malformed input.
function M.decode(text)
	local pos = 1
	local value

	local function skip()
		pos = text:find("[^ \t\r\n]", pos) or (#text + 1)
	end

	local function str()
		local out, i = {}, pos + 1
		while true do
			local j = text:find('["\\]', i)
			if not j then error("unterminated string") end
			out[#out + 1] = text:sub(i, j - 1)
			if text:sub(j, j) == '"' then
				pos = j + 1
				return table.concat(out)
			end
			local e = text:sub(j + 1, j + 1)
			if ESCAPES[e] then
				out[#out + 1] = ESCAPES[e]
				i = j + 2
			elseif e == "u" then
				local cp = tonumber(text:sub(j + 2, j + 5), 16)
				if not cp then error("bad \\u escape") end
				i = j + 6
				if cp >= 0xD800 and cp <= 0xDBFF and text:sub(i, i + 1) == "\\u" then
					local lo = tonumber(text:sub(i + 2, i + 5), 16)
					if lo and lo >= 0xDC00 and lo <= 0xDFFF then
						cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
						i = i + 6
					end
				end
				out[#out + 1] = utf8_char(cp)
			else
				error("bad escape")
			end
		end
	end

	function value()
		skip()
		local c = text:sub(pos, pos)
		if c == "{" then
			local obj = {}
			pos = pos + 1
			skip()
			if text:sub(pos, pos) == "}" then
				pos = pos + 1
				return obj
			end
			while true do
				skip()
				if text:sub(pos, pos) ~= '"' then error("expected a key") end
				local k = str()
				skip()
				if text:sub(pos, pos) ~= ":" then error("expected ':'") end
				pos = pos + 1
				obj[k] = value()
				skip()
				local d = text:sub(pos, pos)
				pos = pos + 1
				if d == "}" then return obj end
				if d ~= "," then error("expected ',' or '}'") end
			end
		elseif c == "[" then
			local arr = {}
			pos = pos + 1
			skip()
			if text:sub(pos, pos) == "]" then
				pos = pos + 1
				return arr
			end
			while true do
				arr[#arr + 1] = value()
				skip()
				local d = text:sub(pos, pos)
				pos = pos + 1
				if d == "]" then return arr end
				if d ~= "," then error("expected ',' or ']'") end
			end
		elseif c == '"' then
			return str()
		elseif text:sub(pos, pos + 3) == "null" then
			pos = pos + 4
			return NULL
		elseif text:sub(pos, pos + 3) == "true" then
			pos = pos + 4
			return true
		elseif text:sub(pos, pos + 4) == "false" then
			pos = pos + 5
			return false
		end
		local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
		if not num or num == "" then error("unexpected character at " .. pos) end
		pos = pos + #num
		return num
	end

	local result = value()
	skip()
	if pos <= #text then error("trailing characters") end
	return result
end

local function urlencode(s)
	return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Decodes base64url (no padding needed); nil on anything else.
function M.base64url_decode(text)
	local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	local out, bits, value = {}, 0, 0
	for i = 1, #text do
		local at = alphabet:find(text:sub(i, i), 1, true)
		if not at then return nil end
		value = value * 64 + (at - 1)
		bits = bits + 6
		if bits >= 8 then
			bits = bits - 8
			local byte = math.floor(value / 2 ^ bits)
			out[#out + 1] = string.char(byte)
			value = value - byte * 2 ^ bits
		end
	end
	return table.concat(out)
end

-- A trust value cidgate keeps: letters, digits and -._~, at most 32; else nil.
local function trust_token(v)
	if type(v) == "string" and v:match("^[%w%-%._~]+$") and #v <= 32 then return v end
	return nil
end

-- What the network said of the caller ID: verstat (P-Asserted-Identity's parameter) and
-- attest (the Identity PASSporT's "attest" claim), each nil when unknown.
function M.trust(var)
	local verstat = trust_token(var("cidgate_verstat"))
	local pai = var("sip_P-Asserted-Identity") or var("sip_i_p-asserted-identity")
	if not verstat and pai then
		verstat = trust_token(pai:match("[;?]verstat=([^;>&%s]+)"))
	end
	local attest = trust_token(var("cidgate_attest"))
	local identity = var("sip_i_identity")
	if not attest and identity then
		local claims = identity:match("^%s*[%w%-_]+%.([%w%-_]+)%.")
		local json = claims and M.base64url_decode(claims)
		local ok, passport = pcall(M.decode, json or "")
		if ok and type(passport) == "table" then
			attest = trust_token(passport.attest)
		end
	end
	return verstat, attest
end

local FIELDS = { "id", "name", "direct_line", "backend_link", "queue_position", "route_identifier",
	"outbound_number", "language", "external_id" }

-- The lookup as a function of its inputs, so it can be tested without FreeSWITCH:
-- get(name) reads a channel variable, curl(args) runs the `curl` API, set(name, value) sets
-- a channel variable, log(level, message) logs.
function M.lookup(get, curl, set, log)
	local function var(name, default)
		local v = get(name)
		if v == nil or v == "" then return default end
		return v
	end
	local default_target = var("cidgate_default_target", "support")
	set("cidgate_status", "failed")
	set("cidgate_transfer_to", default_target)
	set("cidgate_transfer_context", var("cidgate_default_context", "default"))

	local url, token = var("cidgate_url"), var("cidgate_token")
	if not url or not token then
		log("ERR", "cidgate: set cidgate_url and cidgate_token\n")
		return "failed"
	end
	-- secure: mod_curl verifies cidgate's certificate only when asked (without it, anyone on
	-- the path could pose as cidgate and read the token in the query string).
	local verstat, attest = M.trust(var)
	if verstat then set("cidgate_verstat", verstat) end
	if attest then set("cidgate_attest", attest) end
	local request = string.format("%s?telephone=%s&dnid=%s&call_id=%s&verstat=%s&attest=%s&token=%s json secure connect-timeout %d timeout %d",
		url, urlencode(var("caller_id_number", "")), urlencode(var("destination_number", "")),
		urlencode(var("uuid", "")), urlencode(verstat or ""), urlencode(attest or ""), urlencode(token), tonumber(var("cidgate_connect_timeout", "1")) or 1,
		tonumber(var("cidgate_timeout", "2")) or 2)

	-- mod_curl's `json` option wraps the reply: {"status_code":"200","body":"…",…}
	local ok, reply = pcall(function() return M.decode(curl(request) or "") end)
	if not ok or type(reply) ~= "table" or tostring(reply.status_code) ~= "200" or type(reply.body) ~= "string" then
		log("WARNING", "cidgate: lookup failed; routing without caller data\n")
		return "failed"
	end
	local ok2, answer = pcall(M.decode, reply.body)
	if not ok2 or type(answer) ~= "table" or answer.name == nil then
		log("WARNING", "cidgate: unexpected answer; routing without caller data\n")
		return "failed"
	end
	-- A screened caller (the tenant's spam route) is unknown (null id) with a route and,
	-- when the tenant set one, a name.
	local route = answer.route_identifier
	if answer.id == NULL and type(route) == "string" and route == var("cidgate_screening_route", "screening") then
		set("cidgate_status", "screened")
		set("cidgate_route_identifier", route)
		if type(answer.name) == "string" then
			set("cidgate_name", (answer.name:gsub("%c", " ")))
			set("effective_caller_id_name", (answer.name:gsub("%c", " "):gsub('["\\]', "")))
		end
		set("cidgate_transfer_to", var("cidgate_screening_target", "screening"))
		return "screened"
	end
	if answer.name == NULL then
		set("cidgate_status", "unknown")
		return "unknown"
	end

	for _, key in ipairs(FIELDS) do
		local v = answer[key]
		if v ~= nil and v ~= NULL and type(v) ~= "table" then
			-- No control characters in channel variables or SIP headers built from them.
			set("cidgate_" .. key, (tostring(v):gsub("%c", " ")))
		end
	end
	set("cidgate_status", "found")
	set("effective_caller_id_name", (tostring(answer.name):gsub("%c", " "):gsub('["\\]', "")))

	-- direct_line is whatever the CRM holds, so it is never dialled as given (a number on a
	-- gateway would be toll fraud): only an agent's extension, 2 to 6 digits after an
	-- optional technology prefix (SIP/101, user/101 or 101 -> 101), and only in the
	-- cidgate_agents context, whose own pattern decides what it dials.
	local direct = answer.direct_line
	if type(direct) == "string" then
		local target = direct:match("^%a%w*/(.*)$") or direct
		if target:match("^%d%d%d?%d?%d?%d?$") then
			set("cidgate_transfer_to", target)
			set("cidgate_transfer_context", "cidgate_agents")
		else
			log("WARNING", "cidgate: direct_line is not an agent extension; default target\n")
		end
	end
	return "found"
end

-- Run inside FreeSWITCH (mod_lua defines `session` and `freeswitch`); a plain `require`
-- (the tests) only gets the module table.
if session ~= nil and freeswitch ~= nil then
	local api = freeswitch.API()
	M.lookup(
		function(name) return session:getVariable(name) end,
		function(args) return api:execute("curl", args) end,
		function(name, value) session:setVariable(name, value) end,
		function(level, message) freeswitch.consoleLog(level, message) end)
end

return M
