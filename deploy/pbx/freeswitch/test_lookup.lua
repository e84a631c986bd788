-- Unit test of cidgate_lookup.lua without FreeSWITCH: lua5.3 test_lookup.lua
-- (run by deploy/validate.sh when a Lua interpreter is installed).
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local M = require("cidgate_lookup")

local failures, count = 0, 0
local function check(name, cond)
	count = count + 1
	if not cond then
		failures = failures + 1
		print("FAIL " .. name)
	end
end

local function json_string(s)
	return '"' .. s:gsub('[\\"]', "\\%0") .. '"'
end

local function run(reply)
	local vars = { cidgate_url = "http://127.0.0.1:8080/api/lookup", cidgate_token = "cgl_x",
		caller_id_number = "+40 722 000 007", destination_number = "0210000000",
		uuid = "4a1b0c2d-0000-4000-8000-00000000abcd" }
	local seen
	local status = M.lookup(function(n) return vars[n] end,
		function(args) seen = args; return reply end,
		function(n, v) vars[n] = v end,
		function() end)
	return status, vars, seen
end

local found_body = '{"id":12345,"name":"Ion Popescu","queue_position":null,"direct_line":"SIP/101",' ..
	'"backend_link":"https://crm.example.com/c/12345","route_identifier":null,"outbound_number":null,' ..
	'"language":"ro","external_id":null}'
local s, v, args = run('{"status_code":"200","body":' .. json_string(found_body) .. ',"headers":[]}')
check("found: status", s == "found" and v.cidgate_status == "found")
check("found: name", v.effective_caller_id_name == "Ion Popescu" and v.cidgate_name == "Ion Popescu")
check("found: id kept as text", v.cidgate_id == "12345")
check("found: direct line", v.cidgate_direct_line == "SIP/101" and v.cidgate_transfer_to == "101"
	and v.cidgate_transfer_context == "cidgate_agents")
check("found: null fields unset", v.cidgate_queue_position == nil and v.cidgate_language == "ro")
check("request: encoded caller, call id, timeouts", args:find("telephone=%%2B40%%20722%%20000%%20007&dnid=0210000000&call_id=4a1b0c2d%-0000%-4000%-8000%-00000000abcd&", 1) ~= nil
	and args:find(" json secure connect%-timeout 1 timeout 2$") ~= nil)

local unknown = '{"id":null,"name":null,"queue_position":null,"direct_line":null,"backend_link":null,' ..
	'"route_identifier":null,"outbound_number":null,"language":null,"external_id":null}'
s, v = run('{"status_code":"200","body":' .. json_string(unknown) .. '}')
check("unknown", s == "unknown" and v.effective_caller_id_name == nil and v.cidgate_transfer_to == "support"
	and v.cidgate_transfer_context == "default")

s, v = run('{"status_code":"401","body":' .. json_string('{"error":"unauthorized","message":"x"}') .. '}')
check("401 -> failed", s == "failed" and v.cidgate_transfer_to == "support")
s, v = run("-ERR connect failed")
check("refused -> failed", s == "failed" and v.effective_caller_id_name == nil)
s, v = run(nil)
check("no reply -> failed", s == "failed")
s, v = run('{"status_code":"200","body":"<html>bad gateway</html>"}')
check("not JSON -> failed", s == "failed")

local weird = '{"name":"\\u0218tefan \\"Popa\\"\\nX","direct_line":"SIP/a b;c","id":"A-7"}'
s, v = run('{"status_code":"200","body":' .. json_string(weird) .. '}')
check("escapes: unicode, quotes and control chars", v.effective_caller_id_name == "Ștefan Popa X")
check("unsafe direct line ignored", v.cidgate_transfer_to == "support" and v.cidgate_id == "A-7")

-- A CRM-controlled value never reaches a dialplan that can dial out (toll fraud).
for _, line in ipairs({ "+449001234567", "00449001234567", "sofia/gateway/pstn/0900123", "user/0900123456",
	"ion-popescu", "SIP/101@evil.example.com", "1", "1234567", "101 ", "SIP/SIP/101" }) do
	s, v = run('{"status_code":"200","body":' .. json_string('{"name":"X","direct_line":' .. json_string(line) .. '}') .. '}')
	check("not an agent extension: " .. line, v.cidgate_transfer_to == "support" and v.cidgate_transfer_context == "default")
end
for _, line in ipairs({ "101", "PJSIP/2001", "user/10", "123456" }) do
	s, v = run('{"status_code":"200","body":' .. json_string('{"name":"X","direct_line":' .. json_string(line) .. '}') .. '}')
	check("agent extension: " .. line, v.cidgate_transfer_context == "cidgate_agents" and v.cidgate_transfer_to == line:match("(%d+)$"))
end

-- Caller trust: verstat from P-Asserted-Identity, attest from the Identity PASSporT, passed on.
local passport = "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUuY29tL2NlcnQucGVtIn0" ..
	".eyJhdHRlc3QiOiJDIiwiZGVzdCI6eyJ0biI6WyI0MDIxMDAwMDAwMCJdfSwiaWF0IjoxNzk2MTE5MjAwLCJvcmlnIjp7InRuIjoiMTU1NTAwMDExMTEifSwib3JpZ2lkIjoiMTIzZTQ1NjctZTg5Yi0xMmQzLWE0NTYtNDI2NjE0MTc0MDAwIn0" ..
	".c2lnbmF0dXJl;info=<https://cert.example.com/cert.pem>;alg=ES256;ppt=shaken"
local function trust_of(vars)
	return M.trust(function(n) return vars[n] end)
end
local verstat, attest = trust_of({ ["sip_P-Asserted-Identity"] = "<sip:+15550001111@carrier.example;verstat=TN-Validation-Failed>",
	sip_i_identity = passport })
check("trust: verstat and attest", verstat == "TN-Validation-Failed" and attest == "C")
verstat, attest = trust_of({ ["sip_P-Asserted-Identity"] = "<sip:+1555@x;verstat=a&b=c>", sip_i_identity = "junk" })
check("trust: unsafe or unreadable values are left out", verstat == "a" and attest == nil)
verstat, attest = trust_of({})
check("trust: none", verstat == nil and attest == nil)

local screened = '{"id":null,"name":"SPAM?","queue_position":null,"direct_line":null,"backend_link":null,' ..
	'"route_identifier":"screening","outbound_number":null,"language":null,"external_id":null}'
s, v, args = run('{"status_code":"200","body":' .. json_string(screened) .. '}')
check("screened: to the screening target", s == "screened" and v.cidgate_transfer_to == "screening"
	and v.effective_caller_id_name == "SPAM?" and v.cidgate_route_identifier == "screening")
check("request: verstat and attest passed, empty when unknown", args:find("&verstat=&attest=&", 1, true) ~= nil)

print(string.format("freeswitch lua: %d passed, %d failed", count - failures, failures))
os.exit(failures == 0 and 0 or 1)
