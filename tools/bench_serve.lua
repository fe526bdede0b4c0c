-- wrk script for tools/bench_serve.py: posts the request bodies of a file (one
-- JSON body per line: real HH-RLHF responses) to PATH in turn, each wrk
-- thread from its own starting line.
--   wrk -s tools/bench_serve.lua URL -- BODIES_FILE [PATH]
local bodies = {}
local next_body = 0
local path = "/v1/score"
local headers = {["Content-Type"] = "application/json"}

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  if args[2] then path = args[2] end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  next_body = math.random(#bodies) - 1
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", path, headers, bodies[next_body])
end
