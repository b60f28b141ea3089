-- GET on the URL given to wrk (/health, /_cerbos/health), counted.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "count.lua")
