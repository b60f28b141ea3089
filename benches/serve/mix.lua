-- The soak's load (run.sh --soak): three decisions, then one grant request
-- in one of the tasks opened beforehand ($SERVE_TASKS), over and over.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

local grants = {}
local decide
local n = 0

function init(args)
   decide = wrk.format("POST", "/v1/decide", { ["Content-Type"] = "application/json" },
      '{"tool":"db.read","attrs":{"db":{"env":"prod"}}}')
   local file = assert(io.open(os.getenv("SERVE_TASKS"), "r"))
   for id in file:lines() do
      local body = '{"task_id":"' .. id .. '","agent":"bench-agent","tool":"db.read",'
         .. '"attrs":{"db":{"env":"prod"}}}'
      table.insert(grants, wrk.format("POST", "/v1/grants",
         { ["Content-Type"] = "application/json" }, body))
   end
   file:close()
   assert(#grants > 0, "no task ids in $SERVE_TASKS")
end

function request()
   n = n + 1
   if n % 4 == 0 then
      return grants[(n / 4) % #grants + 1]
   end
   return decide
end
