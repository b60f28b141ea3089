-- Grant: POST /v1/decide, the one-rule decision of policy.grant (allowed).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")

wrk.method = "POST"
wrk.path = "/v1/decide"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"tool":"db.read","attrs":{"db":{"env":"prod"}}}'
