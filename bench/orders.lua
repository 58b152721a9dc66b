-- wrk script: POST /orders with the orders-api payload, 20% of it bad.
--
--   wrk -t1 -c16 -d10s -s bench/orders.lua http://127.0.0.1:PORT -- [ORDER_JSON]
--
-- ORDER_JSON (default examples/orders-api/order.json) is a valid order. In
-- every 10 requests, one is malformed JSON (alternately truncated, and with a
-- single-quoted key) and one breaks the schema (alternately an item with
-- `qty` 0 and a customer without `email`); the other 8 are the order as is.
-- The rotation is fixed, so every run sends the same sequence.
--
-- Expected answers: 201 (valid), 400 (malformed), 422 (schema violation),
-- the 4xx as application/problem+json. At the end, `done()` prints lines
-- starting with "orders:" that count answers per status and flag anything
-- else: other statuses (5xx...), 4xx without problem+json, more answers of
-- a class than requests of that class were sent (a misclassification that
-- the requests still in flight at the end cannot explain), socket errors.

local body_path = "examples/orders-api/order.json"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local function read_file(path)
   local f, err = io.open(path, "rb")
   if not f then error("orders.lua: cannot read " .. path .. ": " .. tostring(err)) end
   local data = f:read("*a")
   f:close()
   return data
end

-- s with the first match of pattern replaced; an error when nothing matches,
-- so a changed order.json cannot silently make every request valid.
local function replace_once(s, pattern, repl, what)
   local out, n = s:gsub(pattern, repl, 1)
   if n ~= 1 then error("orders.lua: cannot make the " .. what .. " variant: no match for " .. pattern) end
   return out
end

function init(args)
   if args[1] then body_path = args[1] end
   local valid = read_file(body_path):gsub("%s+$", "")
   local headers = { ["Content-Type"] = "application/json" }
   local function req(body) return wrk.format("POST", "/orders", headers, body) end

   local truncated = valid:sub(1, #valid - 1)
   local single_quoted = replace_once(valid, '"([%w_]+)"%s*:', "'%1':", "single-quoted key")
   local qty_zero = replace_once(valid, '("qty"%s*:%s*)%d+', "%10", "qty 0")
   -- Drop `"email": "...",` or `, "email": "..."` (whichever form is there).
   local no_email, n = valid:gsub('"email"%s*:%s*"[^"]*"%s*,%s*', "", 1)
   if n == 0 then no_email = replace_once(valid, ',%s*"email"%s*:%s*"[^"]*"', "", "missing email") end

   -- kinds[i]: 1 valid, 2 malformed, 3 schema violation.
   sequence, kinds = {}, {}
   for i = 1, 20 do
      local r, k = req(valid), 1
      if i == 5 then r, k = req(truncated), 2
      elseif i == 15 then r, k = req(single_quoted), 2
      elseif i == 10 then r, k = req(qty_zero), 3
      elseif i == 20 then r, k = req(no_email), 3
      end
      sequence[i], kinds[i] = r, k
   end
   position = 0
   sent = { 0, 0, 0 }
   statuses = {}
   not_problem_json = 0
end

function request()
   position = position % 20 + 1
   local k = kinds[position]
   sent[k] = sent[k] + 1
   return sequence[position]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 400 and status < 500 then
      local problem = false
      for name, value in pairs(headers) do
         if name:lower() == "content-type" and value:find("application/problem+json", 1, true) then
            problem = true
         end
      end
      if not problem then not_problem_json = not_problem_json + 1 end
   end
end

function done(summary, latency, requests)
   local got, total_sent = {}, { 0, 0, 0 }
   local bad_ctype = 0
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      for code, n in pairs(s) do got[code] = (got[code] or 0) + n end
      local sn = t:get("sent")
      for k = 1, 3 do total_sent[k] = total_sent[k] + sn[k] end
      bad_ctype = bad_ctype + t:get("not_problem_json")
   end
   local answered, other, other_list = 0, 0, {}
   local class = { 0, 0, 0, 0, 0 }
   for code, n in pairs(got) do
      answered = answered + n
      local c = math.floor(code / 100)
      if c >= 1 and c <= 5 then class[c] = class[c] + n end
      if code ~= 201 and code ~= 400 and code ~= 422 then
         other = other + n
         table.insert(other_list, code .. "=" .. n)
      end
   end
   table.sort(other_list)
   local expected = { 201, 400, 422 }
   local misclassified = 0
   for k = 1, 3 do
      local excess = (got[expected[k]] or 0) - total_sent[k]
      if excess > 0 then misclassified = misclassified + excess end
   end
   local e = summary.errors
   local socket = e.connect + e.read + e.write + e.timeout
   io.write(string.format("orders: sent valid=%d malformed=%d invalid=%d\n",
      total_sent[1], total_sent[2], total_sent[3]))
   io.write(string.format("orders: answered=%d 2xx=%d 4xx=%d 201=%d 400=%d 422=%d other=%d%s\n",
      answered, class[2], class[4], got[201] or 0,
      got[400] or 0, got[422] or 0, other,
      #other_list > 0 and (" (" .. table.concat(other_list, " ") .. ")") or ""))
   io.write(string.format(
      "orders: anomalies=%d other-status=%d not-problem-json=%d misclassified>=%d socket-errors=%d (connect %d, read %d, write %d, timeout %d)\n",
      other + bad_ctype + misclassified + socket, other, bad_ctype, misclassified, socket,
      e.connect, e.read, e.write, e.timeout))
end
