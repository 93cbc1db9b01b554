-- TechEmpower-style HTTP pipelining for wrk: every request() writes `depth`
-- copies of the request at once.
--
--   wrk -t1 -c256 -d10s --latency -s pipeline.lua URL -- 16 256
--
-- Arguments: the pipelining depth, and the connection count given to -c.
--
-- wrk counts every response in Requests/sec but records one latency sample per
-- batch. Its coordinated-omission correction then takes one response per round
-- trip (interval = duration / (responses / connections)), so for pipelined runs
-- it adds `depth` times too many synthetic samples, many below the recorded
-- minimum where its percentile walk never looks, and its upper percentiles
-- print as 0. done() undoes that correction, applies it again with the batch
-- interval, and prints (microseconds):
--   Batch latency: p50 <us> p90 <us> p99 <us> batches <n>

local threads = {}
local MAX_SCAN = 1e10 -- bucket visits allowed to read wrk's histogram back

setup = function(thread)
  threads[#threads + 1] = thread
end

init = function(args)
  local depth = tonumber(args[1]) or 1
  wrk.thread:set("connections", tonumber(args[2]) or 0)
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end

-- Read the (value, count) buckets of wrk's histogram, ascending. latency(i)
-- scans from the minimum each call, hence the cost check.
local function buckets(latency)
  local n = #latency
  if n * (latency.max - latency.min) / 2 > MAX_SCAN then return nil end
  local values, counts = {}, {}
  for i = 1, n do
    values[i], counts[i] = latency(i)
  end
  return values, counts
end

-- Inverse of wrk's stats_correct(): a sample at v >= 2e also added one at each
-- v - k*e (> e). Walking down, acc[r] sums the original counts already seen in
-- residue class r (mod e), which is what the correction added to this bucket.
local function uncorrect(values, counts, e)
  local acc, orig = {}, {}
  for i = #values, 1, -1 do
    local v = values[i]
    local added = 0
    if v > e then added = acc[v % e] or 0 end
    local c = math.max(counts[i] - added, 0)
    orig[i] = c
    if v > e then acc[v % e] = (acc[v % e] or 0) + c end
  end
  return orig
end

-- wrk's stats_correct() with interval e, into a value -> count table.
local function correct(values, counts, e)
  local hist = {}
  for i = 1, #values do
    local v, c = values[i], counts[i]
    hist[v] = (hist[v] or 0) + c
    if c > 0 and e > 0 and v >= 2 * e then
      local m = v - e
      while m > e do
        hist[m] = (hist[m] or 0) + c
        m = m - e
      end
    end
  end
  return hist
end

-- wrk's stats_percentile() over a value -> count table.
local function percentiles(hist, ps)
  local keys, total = {}, 0
  for v, c in pairs(hist) do
    keys[#keys + 1] = v
    total = total + c
  end
  table.sort(keys)
  local out, seen, k = {}, 0, 1
  for _, p in ipairs(ps) do
    local rank = math.floor(p / 100 * total + 0.5 + 0.5)
    while k <= #keys and seen + hist[keys[k]] < rank do
      seen = seen + hist[keys[k]]
      k = k + 1
    end
    out[#out + 1] = keys[math.min(k, #keys)] or 0
  end
  return out
end

done = function(summary, latency, requests)
  local connections = threads[1] and threads[1]:get("connections") or 0
  local rounds = math.floor(summary.requests / math.max(connections, 1))
  if connections <= 0 or rounds == 0 or #latency == 0 then return end
  local values, counts = buckets(latency)
  if not values then
    io.write("Batch latency: skipped, histogram too wide to read back\n")
    return
  end
  local orig = uncorrect(values, counts, math.floor(summary.duration / rounds))
  local batches = 0
  for i = 1, #orig do batches = batches + orig[i] end
  local batch_rounds = math.floor(batches / connections)
  local e = batch_rounds > 0 and math.floor(summary.duration / batch_rounds) or 0
  local p = percentiles(correct(values, orig, e), {50, 90, 99})
  io.write(string.format("Batch latency: p50 %d p90 %d p99 %d batches %d\n",
    p[1], p[2], p[3], batches))
end
