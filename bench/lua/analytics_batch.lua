-- POST a JSON array of BENCH_BATCH_SIZE message events per request, each event with its own id.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local run = os.getenv("BENCH_RUN_ID") or "run"
local size = tonumber(os.getenv("BENCH_BATCH_SIZE") or "100")
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

function request()
  counter = counter + 1
  local events = {}
  for i = 1, size do
    events[i] = string.format(
      '{"type":"message","thread_id":"cthr_bench","event":"response.end","id":"%s-%d-%d-%d"}',
      run, tid or 0, counter, i)
  end
  return wrk.format("POST", nil, headers, "[" .. table.concat(events, ",") .. "]")
end
