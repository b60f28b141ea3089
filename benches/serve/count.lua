-- Shared by every wrk script of benches/serve: counts the responses that
-- are not 2xx (wrk's own text shows them only as "Non-2xx or 3xx"), and
-- prints one machine-readable RESULT line that run.sh reads.
-- Loaded with dofile() from the script next to it.

non2xx = 0

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
   end
   local e = summary.errors
   local socket = e.connect + e.read + e.write + e.timeout
   io.write(string.format(
      "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      bad, socket))
end

