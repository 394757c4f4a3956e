-- POST one analytics event per request, each with its own id (BENCH_RUN_ID-thread-counter), so
-- that idempotency never folds two requests into one stored row.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local run = os.getenv("BENCH_RUN_ID") or "run"
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

function request()
  counter = counter + 1
  local body = string.format(
    '{"thread_id":"cthr_bench","event":"response.end","id":"%s-%d-%d"}', run, tid or 0, counter)
  return wrk.format("POST", nil, headers, body)
end
