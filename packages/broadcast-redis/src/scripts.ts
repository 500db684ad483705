// The Lua scripts of the engine. Each touches one topic's keys only (one hash tag, so one Cluster
// slot) and runs atomically, so offsets reach every node in order. They are registered with
// ioredis's defineCommand: EVALSHA, and EVAL on NOSCRIPT, on whichever node serves the slot (a
// restarted or newly promoted one included).

import type { StreamEntry } from './codec.js'
import type { RedisClient } from './connection.js'

// Redis lost writes this node had seen (an older snapshot, an asynchronous failover): the topic
// gets a new epoch that goes on after them, and nothing of the old history is kept, so no offset is
// ever given twice under one epoch. KEYS: meta, stream, sizes. Locals: epoch, offset, first, total.
const newEpochAfterLoss = (knownEpoch: string, floor: string, newEpoch: string): string => `
if epoch == ${knownEpoch} and offset < tonumber(${floor}) then
  redis.call('DEL', KEYS[2], KEYS[3])
  epoch = ${newEpoch}
  offset = tonumber(${floor})
  first = offset + 1
  total = 0
end`

// Publish: the next offset (a new epoch when the topic has none, or after a loss), append to the
// stream trimmed by count and bytes, deliver. One read and one write of the meta hash. A publish
// whose idempotency key is remembered under the current epoch answers with the first one's
// position and stores nothing (the third value of the reply is 1).
// KEYS: meta, stream, sizes, idempotency key. ARGV: new epoch, data, origin, size, max bytes, key
// ttl ms, now ms, channel, publish command, known epoch, known offset, dedupe window ms (0: no key).
const publishLua = `
local meta = redis.call('HMGET', KEYS[1], 'e', 'o', 'f', 'z')
local epoch = meta[1]
local offset = tonumber(meta[2] or '0')
local first = tonumber(meta[3] or '1')
local total = tonumber(meta[4] or '0')
if not epoch then
  redis.call('DEL', KEYS[2], KEYS[3])
  epoch = ARGV[1]
  offset = 0
  first = 1
  total = 0
end
${newEpochAfterLoss('ARGV[10]', 'ARGV[11]', 'ARGV[1]')}
local window = tonumber(ARGV[12])
if window > 0 then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    local bar = string.find(seen, '|', 1, true)
    if bar and string.sub(seen, 1, bar - 1) == epoch then
      return {epoch, tonumber(string.sub(seen, bar + 1)), 1}
    end
  end
end
offset = offset + 1
local size = tonumber(ARGV[4])
if size > 0 then
  local bytes = #ARGV[2] + 64
  redis.call('XADD', KEYS[2], offset .. '-1', 'd', ARGV[2], 'g', ARGV[3], 't', ARGV[7])
  redis.call('RPUSH', KEYS[3], bytes)
  total = total + bytes
  local maxBytes = tonumber(ARGV[5])
  local oldest = first
  while first < offset and (offset - first + 1 > size or total > maxBytes) do
    total = total - tonumber(redis.call('LPOP', KEYS[3]) or '0')
    first = first + 1
  end
  if first ~= oldest then redis.call('XTRIM', KEYS[2], 'MINID', first .. '-1') end
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
else
  first = offset + 1
end
redis.call('HSET', KEYS[1], 'e', epoch, 'o', offset, 'f', first, 'z', total)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call(ARGV[9], ARGV[8], 'm|' .. epoch .. '|' .. offset .. '|' .. ARGV[3] .. '|' .. ARGV[2])
if window > 0 then redis.call('SET', KEYS[4], epoch .. '|' .. offset, 'PX', window) end
return {epoch, offset, 0}
`

// History: the position and the entries after `since`, read atomically. A topic without state gets
// its epoch here (expiring soon unless a publish follows), so a position read before the first
// message recovers it. KEYS: meta, stream, sizes. ARGV: new epoch, since offset (-1: none), ttl ms.
const historyLua = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  redis.call('DEL', KEYS[2], KEYS[3])
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0, 'f', 1, 'z', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
local since = tonumber(ARGV[2])
local entries = {}
if since >= 0 and since < offset then
  entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-1', '+')
end
return {epoch, offset, entries}
`

// A node found the topic behind what it delivered: new epoch after the loss (see above).
// KEYS: meta, stream, sizes. ARGV: known epoch, known offset, new epoch.
const guardLua = `
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local epoch = meta[1]
local offset = tonumber(meta[2] or '0')
local first, total = offset + 1, 0
local before = epoch
${newEpochAfterLoss('ARGV[1]', 'ARGV[2]', 'ARGV[3]')}
if epoch ~= before then redis.call('HSET', KEYS[1], 'e', epoch, 'o', offset, 'f', first, 'z', total) end
return {epoch or '', offset}
`

// A volatile message: published on the topic's channel, nothing stored. A script only so that a
// Cluster runs it on the topic's slot (the channel shares its hash tag). KEYS: meta hash (for the
// slot). ARGV: channel, publish command, payload.
const volatileLua = `
redis.call(ARGV[2], ARGV[1], ARGV[3])
return 1
`

// Presence. KEYS: presence hash. ARGV: connection id, member JSON, channel, publish command.
const presenceAddLua = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call(ARGV[4], ARGV[3], 'j|' .. ARGV[2])
return 1
`
// KEYS: presence hash. ARGV: connection id, channel, publish command.
const presenceRemoveLua = `
local member = redis.call('HGET', KEYS[1], ARGV[1])
if not member then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call(ARGV[3], ARGV[2], 'l|' .. member)
return 1
`
// Puts back members Redis lost (a restart): each one missing is added and announced.
// KEYS: presence hash. ARGV: channel, publish command, then connection id and member JSON pairs.
const presenceRestoreLua = `
local restored = 0
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call(ARGV[2], ARGV[1], 'j|' .. ARGV[i + 1])
    restored = restored + 1
  end
end
return restored
`

type Call<Result> = (...keysAndArgs: (string | number)[]) => Promise<Result>

/** The scripts as commands of a client (defined on it once). */
export interface Scripts {
  publish: Call<[epoch: string, offset: number, duplicate: number]>
  history: Call<[epoch: string, offset: number, entries: StreamEntry[]]>
  guard: Call<[epoch: string, offset: number]>
  volatile: Call<number>
  presenceAdd: Call<number>
  presenceRemove: Call<number>
  presenceRestore: Call<number>
}

const definitions: Record<keyof Scripts, { name: string; numberOfKeys: number; lua: string }> = {
  publish: { name: 'flumenPublish', numberOfKeys: 4, lua: publishLua },
  history: { name: 'flumenHistory', numberOfKeys: 3, lua: historyLua },
  guard: { name: 'flumenGuard', numberOfKeys: 3, lua: guardLua },
  volatile: { name: 'flumenVolatile', numberOfKeys: 1, lua: volatileLua },
  presenceAdd: { name: 'flumenPresenceAdd', numberOfKeys: 1, lua: presenceAddLua },
  presenceRemove: { name: 'flumenPresenceRemove', numberOfKeys: 1, lua: presenceRemoveLua },
  presenceRestore: { name: 'flumenPresenceRestore', numberOfKeys: 1, lua: presenceRestoreLua },
}

/** Defines the scripts on `client` (idempotent) and returns them bound to it. */
export const defineScripts = (client: RedisClient): Scripts => {
  const bind = <Result>(key: keyof Scripts): Call<Result> => {
    const { name, numberOfKeys, lua } = definitions[key]
    // A command defined by defineCommand is a method named after it, not in the client's type.
    if (typeof Reflect.get(client, name) !== 'function') client.defineCommand(name, { numberOfKeys, lua })
    // Its reply has the shape the script returns (see the Lua above).
    const command = Reflect.get(client, name) as Call<Result>
    return (...keysAndArgs) => command.apply(client, keysAndArgs)
  }
  return {
    publish: bind('publish'),
    history: bind('history'),
    guard: bind('guard'),
    volatile: bind('volatile'),
    presenceAdd: bind('presenceAdd'),
    presenceRemove: bind('presenceRemove'),
    presenceRestore: bind('presenceRestore'),
  }
}
