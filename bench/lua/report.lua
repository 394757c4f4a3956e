-- Shared by every bench script (loaded with dofile): numbers the threads, counts answers by
-- status in each thread, and prints one machine-readable line at the end:
--   BENCH_JSON {"requests":..., "statuses":{"200":...}, "latency_us":{...}, "errors":{...}}
local threads = {}
local next_tid = 1

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

statuses = {}

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local function num(value)
  return string.format("%.0f", value)
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for key, count in pairs(counts) do
      merged[key] = (merged[key] or 0) + count
    end
  end
  local status_parts = {}
  for key, count in pairs(merged) do
    status_parts[#status_parts + 1] = string.format('"%s":%s', key, num(count))
  end
  local pct = {}
  for _, p in ipairs({50, 75, 90, 99, 99.9}) do
    pct[#pct + 1] = string.format('"p%s":%s', tostring(p), num(latency:percentile(p)))
  end
  local e = summary.errors
  io.write("BENCH_JSON {",
    '"duration_us":', num(summary.duration), ",",
    '"requests":', num(summary.requests), ",",
    '"bytes":', num(summary.bytes), ",",
    '"errors":{"connect":', num(e.connect), ',"read":', num(e.read), ',"write":', num(e.write),
    ',"status":', num(e.status), ',"timeout":', num(e.timeout), "},",
    '"statuses":{', table.concat(status_parts, ","), "},",
    '"latency_us":{"min":', num(latency.min), ',"max":', num(latency.max), ',"mean":', num(latency.mean),
    ",", table.concat(pct, ","), "}",
    "}\n")
end
