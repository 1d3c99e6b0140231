-- bench/run's request generator: rotates over the lines of BENCH_REQUESTS,
-- "<token> <path>" each ("-" = no Authorization header), so one run spreads
-- over many tenants, tokens and servers. BENCH_METHOD (default GET) and
-- BENCH_BODY (JSON, optional) apply to every request. Requests are formatted
-- once in init, so the generator's cost per request is one table lookup.
-- At the end, done() writes the summary as NAME=value lines to BENCH_OUT.
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body == "" then body = nil end
local list, n, i = {}, 0, 0

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local tok, path = line:match("^(%S+)%s+(%S+)$")
    if tok then
      local h = {}
      if tok ~= "-" then h["Authorization"] = "Bearer " .. tok end
      if body then h["Content-Type"] = "application/json" end
      n = n + 1
      list[n] = wrk.format(method, path, h, body)
    end
  end
  if n == 0 then error("no requests in BENCH_REQUESTS") end
  -- threads start at different places in the list
  i = ((id or 0) * 7919) % n
end

function request()
  i = i % n + 1
  return list[i]
end

function done(summary, latency, requests)
  local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  local e = summary.errors
  f:write(string.format("requests=%d\nduration_us=%d\nstatus_errors=%d\n", summary.requests, summary.duration, e.status))
  f:write(string.format("socket_errors=%d\n", e.connect + e.read + e.write + e.timeout))
  f:write(string.format("p50_us=%d\np99_us=%d\n", latency:percentile(50), latency:percentile(99)))
  f:close()
end
