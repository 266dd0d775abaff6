//! The Lua scripts: every change of membership and its event in one atomic
//! step, timed by the Redis server's clock (`TIME`), so instances' clocks
//! never need to agree.
//!
//! Keys (prefix `p`): `p\x00instances` (sorted set: instance id → the
//! millisecond its heartbeat expires), `p\x00events` (stream of changes:
//! fields `c` = `join` | `leave` | `expire`, `t` = topic, `m` = member
//! JSON), `p\x00i:{instance}` (hash: member field → topic, what a sweep
//! removes), `pm:{topic}` (hash: member field `{instance}:{join}` → member
//! JSON). The NUL byte keeps the instance keys apart from every topic's
//! key. Scripts name some keys they compute, so all keys must be on one
//! Redis (not spread over a Redis Cluster), as the broadcast backend's.

/// The server's time in milliseconds, as the scripts' first lines.
macro_rules! now {
    () => {
        "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    };
}

/// Renews an instance's heartbeat: its expiry is now + `ARGV[2]` ms.
/// Returns 0 without renewing if the instance is unknown or expired (it was,
/// or is about to be, swept), unless `ARGV[3]` is `1` (registering).
///
/// `KEYS[1]`: instances. `ARGV`: instance, expiry ms, registering.
pub(super) const HEARTBEAT: &str = concat!(
    now!(),
    r"
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] ~= '1' and (not expires or tonumber(expires) < now) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"
);

/// Adds a member and its `join` event, if its instance is alive (else
/// returns 0: the instance must register anew). A member already there is
/// left alone (no second event).
///
/// `KEYS`: instances, topic hash, instance's index, events. `ARGV`:
/// instance, field, topic, member JSON, events kept.
pub(super) const JOIN: &str = concat!(
    now!(),
    r"
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires or tonumber(expires) < now then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[4]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'c', 'join', 't', ARGV[3], 'm', ARGV[4])
end
return 1
"
);

/// Removes a member and adds its `leave` event; nothing if it is gone
/// already (left, or swept with an `expire` event).
///
/// `KEYS`: topic hash, instance's index, events. `ARGV`: field, topic,
/// events kept.
pub(super) const LEAVE: &str = r"
local member = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if not member then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'c', 'leave', 't', ARGV[2], 'm', member)
return 1
";

/// Removes up to about `ARGV[2]` members of one instance, each with an
/// `expire` event: of `ARGV[4]` if given (retiring it), else of the first
/// expired instance. An instance with no members left is forgotten.
/// Returns 1 if it did something (call again), 0 if there was nothing to do.
///
/// `KEYS`: instances, events. `ARGV`: key prefix, batch, events kept,
/// instance (or empty).
pub(super) const SWEEP: &str = concat!(
    now!(),
    r"
local dead = ARGV[4]
if dead == '' then
  dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, 1)[1]
  if not dead then return 0 end
end
local index = ARGV[1] .. '\0i:' .. dead
local cursor = '0'
local done = 0
repeat
  local page = redis.call('HSCAN', index, cursor, 'COUNT', ARGV[2])
  cursor = page[1]
  local fields = page[2]
  for i = 1, #fields, 2 do
    local key = ARGV[1] .. 'm:' .. fields[i + 1]
    local member = redis.call('HGET', key, fields[i])
    redis.call('HDEL', index, fields[i])
    if member then
      redis.call('HDEL', key, fields[i])
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'c', 'expire', 't', fields[i + 1], 'm', member)
    end
    done = done + 1
  end
until done > 0 or cursor == '0'
if redis.call('EXISTS', index) == 0 then
  if redis.call('ZREM', KEYS[1], dead) == 1 then done = done + 1 end
end
if done > 0 then return 1 end
return 0
"
);

/// The members of a topic whose instance is alive.
///
/// `KEYS`: topic hash, instances.
pub(super) const LIST: &str = concat!(
    now!(),
    r"
local out = {}
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local instance = string.match(all[i], '^(.-):')
  if instance then
    if live[instance] == nil then
      local expires = redis.call('ZSCORE', KEYS[2], instance)
      live[instance] = (expires and tonumber(expires) >= now) and 1 or 0
    end
    if live[instance] == 1 then out[#out + 1] = all[i + 1] end
  end
end
return out
"
);
