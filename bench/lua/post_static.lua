-- POST the same JSON body on every request: BENCH_BODY (default "{}"), and an Authorization
-- header when BENCH_BEARER is set (the stand-in called directly needs its key and beta header).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local bearer = os.getenv("BENCH_BEARER")
if bearer and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
  wrk.headers["OpenAI-Beta"] = "chatkit_beta=v1"
end
