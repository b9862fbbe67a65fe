-- wrk load for bench/ingest.py's server: unique ~2 KB Zoho item envelopes, token auth on.
-- Each wrk thread numbers its own ids, so no two requests carry the same object.
-- Usage (see docs/BENCHMARKS.md): wrk -t2 -c16 -d10s -s bench/ingest_wrk.lua http://127.0.0.1:PORT/webhooks/products
local threads = {}
local pad = string.rep("x", 1800)

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  token = os.getenv("TDS_WEBHOOK_TOKEN") or "bench-token"
  stamp = os.time()
end

function request()
  counter = counter + 1
  local id = string.format("%d%02d%09d", stamp, tid, counter)
  local body = '{"code":0,"message":"success","item":{"item_id":"' .. id .. '","name":"Widget ' .. id ..
    '","sku":"W-' .. id .. '","rate":12.5,"status":"active","description":"' .. pad ..
    '","last_modified_time":"2026-06-09T09:45:41-0400"}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-TDS-Token"] = token}, body)
end
