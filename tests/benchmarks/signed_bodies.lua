-- wrk script: POST unique, pre-signed bodies, each at most once across all threads.
--
--   BODIES=/tmp/bodies.tsv wrk -t2 -c16 -d8s -s signed_bodies.lua http://127.0.0.1:PORT/path
--
-- BODIES holds one request a line: header name, value, name, value ... and the body last,
-- separated by tabs (the bodies are JSON, which has no raw tab). Thread k of n takes lines
-- k, k+n, k+2n ...; a thread that runs out sends its last body again (a duplicate, which
-- the benchmark counts as not stored). done() prints one line `WRK {json}` for the runner.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local n = #threads > 0 and #threads or 2
  requests = {}
  local file = assert(io.open(os.getenv("BODIES"), "r"))
  local line_no = 0
  local me = id or 0
  local total = tonumber(os.getenv("THREADS") or "2")
  for line in file:lines() do
    if line_no % total == me then
      local fields = {}
      for field in (line .. "\t"):gmatch("([^\t]*)\t") do
        table.insert(fields, field)
      end
      local body = table.remove(fields)
      local headers = {}
      for i = 1, #fields, 2 do
        headers[fields[i]] = fields[i + 1]
      end
      table.insert(requests, wrk.format("POST", nil, headers, body))
    end
    line_no = line_no + 1
  end
  file:close()
  next_request = 1
  sent = 0
end

function request()
  local r = requests[next_request]
  if next_request < #requests then
    next_request = next_request + 1
  end
  sent = sent + 1
  return r
end

function done(summary, latency, requests_)
  local e = summary.errors
  print(string.format(
    'WRK {"requests": %d, "duration_us": %d, "non_2xx_or_3xx": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
