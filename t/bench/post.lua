-- wrk script: POST /v1/chat/completions with a small JSON body.
--   BENCH_MODEL  model name sent (default "auto")
--   BENCH_KEY    sent as "Authorization: Bearer $BENCH_KEY" when set
--   BENCH_PATH   request path (default /v1/chat/completions)
--   BENCH_HEADERS extra headers, "Name: value" separated by "|" (e.g. for a gateway's routing headers)
local model = os.getenv("BENCH_MODEL") or "auto"
local key = os.getenv("BENCH_KEY")
local path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
local extra = os.getenv("BENCH_HEADERS")

wrk.method = "POST"
wrk.path = path
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}]}'
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
if extra and extra ~= "" then
  for pair in string.gmatch(extra, "[^|]+") do
    local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
    if name then wrk.headers[name] = value end
  end
end

-- No response() callback: defining one makes wrk hand every answer to Lua, which slows it.
-- wrk itself counts status >= 400 in summary.errors.status; run.sh reads this line.
function done(summary, latency, requests)
  io.write(string.format("non2xx: %d\n", summary.errors.status))
end
