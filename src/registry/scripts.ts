// The registry's writes as Lua scripts: each runs atomically in Redis, so a name, its reference count and its
// event always change together, and concurrent API and worker processes never see half of a registration.
// KEYS: 1 adapters (name → record), 2 details (name → diagnostics), 3 refs (sha → names using it),
// 4 shapes (sha → module shapes), 5 recipes (recipe hash → name), 6 events (stream), 7 version (bumped on every
// change, so readers can cache the list).

export const REGISTER = `
local name, rec, sha, replace, details, shapes, recipe = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local cur = redis.call('HGET', KEYS[1], name)
local orphan = ''
local status = 'created'
if cur then
  local old = cjson.decode(cur)
  if old.sha256 == sha then return {'unchanged', cur, ''} end
  if replace ~= '1' then return {'conflict', cur, ''} end
  status = 'replaced'
  if redis.call('HINCRBY', KEYS[3], old.sha256, -1) <= 0 then
    redis.call('HDEL', KEYS[3], old.sha256)
    redis.call('HDEL', KEYS[4], old.sha256)
    orphan = old.sha256
  end
  if type(old.recipeHash) == 'string' and redis.call('HGET', KEYS[5], old.recipeHash) == name then
    redis.call('HDEL', KEYS[5], old.recipeHash)
  end
end
redis.call('HSET', KEYS[1], name, rec)
if details ~= '' then redis.call('HSET', KEYS[2], name, details) else redis.call('HDEL', KEYS[2], name) end
redis.call('HINCRBY', KEYS[3], sha, 1)
redis.call('HSET', KEYS[4], sha, shapes)
-- the first name registered from a recipe stands for it; copies under other names (registerCopy) leave it be
if recipe ~= '' then redis.call('HSETNX', KEYS[5], recipe, name) end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', '1000', '*', 'type', status, 'name', name, 'sha256', sha)
redis.call('INCR', KEYS[7])
return {status, rec, orphan}
`;

export const REMOVE = `
local name, force = ARGV[1], ARGV[2]
local cur = redis.call('HGET', KEYS[1], name)
if not cur then return {'missing', '', ''} end
local rec = cjson.decode(cur)
local refs = tonumber(redis.call('HGET', KEYS[3], rec.sha256) or '0')
if force ~= '1' and refs <= 1 then
  local dependents = {}
  for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
    local o = cjson.decode(v)
    if o.name ~= name and type(o.inputs) == 'table' then
      for _, input in ipairs(o.inputs) do
        if input.sha256 == rec.sha256 then
          table.insert(dependents, o.name)
          break
        end
      end
    end
  end
  if #dependents > 0 then return {'dependents', cjson.encode(dependents), ''} end
end
redis.call('HDEL', KEYS[1], name)
redis.call('HDEL', KEYS[2], name)
local orphan = ''
if redis.call('HINCRBY', KEYS[3], rec.sha256, -1) <= 0 then
  redis.call('HDEL', KEYS[3], rec.sha256)
  redis.call('HDEL', KEYS[4], rec.sha256)
  orphan = rec.sha256
end
if type(rec.recipeHash) == 'string' and redis.call('HGET', KEYS[5], rec.recipeHash) == name then
  redis.call('HDEL', KEYS[5], rec.recipeHash)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', '1000', '*', 'type', 'removed', 'name', name, 'sha256', rec.sha256)
redis.call('INCR', KEYS[7])
return {'removed', cur, orphan}
`;
