-- Cerbos: POST /api/check/resources, the same decision as decide.lua
-- (cerbos/policies/tool.yaml: action db.read on a `tool` resource whose
-- attribute db_env is "prod"; allowed).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

wrk.method = "POST"
wrk.path = "/api/check/resources"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"requestId":"bench","principal":{"id":"agent-1","roles":["agent"]},'
   .. '"resources":[{"actions":["db.read"],"resource":{"kind":"tool","id":"db","attr":{"db_env":"prod"}}}]}'
