"""wrk_cart.py SHOPPERS_JSON DIR: writes cart_add.lua and cart_set.lua.

Each wrk connection is one logged-in shopper (its session cookie) working on
four products of its own, so carts stay small (a real cart, not 250 lines)
and no line passes 99 within a run; the set run puts every line back to 1..3.
An add carries no Idempotency-Key: nginx gives it its request id, as for a
browser's add."""
import json
import sys

shoppers = json.load(open(sys.argv[1]))
out = sys.argv[2]
cookies = shoppers["cookies"]
products = shoppers["products"][:64] or [1]

common = """
local cookies = {%s}
local products = {%s}
local counter = 0
function setup(thread)
  thread:set("base", counter)
  counter = counter + 1
end
local n = 0
local me = nil
function init(args)
  me = (base or 0)
end
""" % (
    ",".join(json.dumps(c) for c in cookies),
    ",".join(str(p) for p in products),
)

add = common + """
request = function()
  n = n + 1
  local s = ((me * 97 + n) %% #cookies) + 1
  local p = products[((s * 4 + (n %% 4)) %% #products) + 1]
  return wrk.format("POST", "/api/cart/items",
    {["Content-Type"] = "application/json", ["Cookie"] = "distshop_session=" .. cookies[s]},
    '{"product_id":' .. p .. ',"quantity":1}')
end
""".replace("%%", "%")

put = common + """
request = function()
  n = n + 1
  local s = ((me * 97 + n) %% #cookies) + 1
  local p = products[((s * 4 + (n %% 4)) %% #products) + 1]
  return wrk.format("PUT", "/api/cart/items/" .. p,
    {["Content-Type"] = "application/json", ["Cookie"] = "distshop_session=" .. cookies[s]},
    '{"quantity":' .. ((n %% 3) + 1) .. '}')
end
""".replace("%%", "%")

open(f"{out}/cart_add.lua", "w").write(add)
open(f"{out}/cart_set.lua", "w").write(put)
