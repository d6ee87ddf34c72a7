"""The redis-server the tests start on a free loopback port."""

from chenu_desktop.redis_server import LocalRedisServer as RedisServer
from chenu_desktop.redis_server import free_port

__all__ = ["RedisServer", "free_port"]
