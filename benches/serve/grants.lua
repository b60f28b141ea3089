-- Grant: POST /v1/grants, cycling through the tasks opened beforehand by
-- run.sh (one task id a line in the file named by $SERVE_TASKS).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

local requests = {}
local next_request = 1

function init(args)
   local file = assert(io.open(os.getenv("SERVE_TASKS"), "r"))
   for id in file:lines() do
      local body = '{"task_id":"' .. id .. '","agent":"bench-agent","tool":"db.read",'
         .. '"attrs":{"db":{"env":"prod"}}}'
      table.insert(requests, wrk.format("POST", "/v1/grants",
         { ["Content-Type"] = "application/json" }, body))
   end
   file:close()
   assert(#requests > 0, "no task ids in $SERVE_TASKS")
end

function request()
   local r = requests[next_request]
   next_request = next_request % #requests + 1
   return r
end
