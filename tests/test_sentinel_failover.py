"""A Sentinel failover during a burst: the engine follows the new master, no task is lost."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.errors import (
    TaskNotFoundError,
)

from engine_helpers import (
    Burst,
    open_test_engine,
    wait_final,
    wait_final_all,
    wait_until,
)
from redis_helpers import free_port

SERVICE = "chenu"
#: Seconds the cluster gets to start, agree on a master, or fail over.
CLUSTER_TIMEOUT = 60.0
#: Seconds the accepted tasks get to reach a final status.
FINISH_TIMEOUT = 120.0


@background_task(name="sentinel_echo", queue=TaskQueue.DEFAULT)
def sentinel_echo(number: int) -> int:
    return number


@background_task(name="sentinel_fail", queue=TaskQueue.DEFAULT)
def sentinel_fail(number: int) -> None:
    raise ValueError(f"task {number} fails on purpose")


# Durability across the failover comes from two settings. The engine's URL
# has wait_replicas=1, so a ledger write returns only after WAIT reports that
# the replica has it; a submit whose WAIT times out raises
# SubmitUnconfirmedError. The servers have min-replicas-to-write 1, so once
# the promoted replica leaves the old master, the old master rejects writes
# (NOREPLICAS) instead of accepting writes that its demotion would discard.
# Huey's queue writes are not waited on: a pop lost this way runs the task
# again, and a push lost this way is requeued by the orphan check.
SERVER_CONFIG = """\
port {port}
bind 127.0.0.1
dir {folder}
logfile {folder}/redis.log
save ""
appendonly no
min-replicas-to-write 1
min-replicas-max-lag 10
"""

SENTINEL_CONFIG = """\
port {port}
bind 127.0.0.1
dir {folder}
logfile {folder}/sentinel.log
sentinel resolve-hostnames no
sentinel monitor {service} 127.0.0.1 {master_port} 2
sentinel down-after-milliseconds {service} 2000
sentinel failover-timeout {service} 20000
"""


class Node:
    """A redis-server or sentinel process of the cluster, with its own folder."""

    def __init__(self, folder: Path, config: str, sentinel: bool = False) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server not found on PATH"
        folder.mkdir(parents=True)
        self.folder = folder
        self.port = free_port()
        path = folder / "node.conf"
        path.write_text(config.format(port=self.port, folder=folder), encoding="utf-8")
        command = [binary, str(path)] + (["--sentinel"] if sentinel else [])
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.client = redis.Redis(
            port=self.port, socket_timeout=5, decode_responses=True
        )

    def log(self) -> str:
        logs = [p.read_text(errors="replace") for p in self.folder.glob("*.log")]
        return "\n".join(text[-3000:] for text in logs)

    def responds(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            assert self.process.poll() is None, self.log()
            return False

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class Cluster:
    """A master, its replica and three sentinels (quorum 2) on 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.nodes: list[Node] = []
        self.master = self._add(folder / "master", SERVER_CONFIG)
        replica_config = SERVER_CONFIG + f"replicaof 127.0.0.1 {self.master.port}\n"
        self.replica = self._add(folder / "replica", replica_config)
        wait_until(self.replica_linked, CLUSTER_TIMEOUT, "the replica to sync")
        self.sentinels = [
            self._add(
                folder / f"sentinel-{number}",
                SENTINEL_CONFIG.replace("{service}", SERVICE).replace(
                    "{master_port}", str(self.master.port)
                ),
                sentinel=True,
            )
            for number in range(3)
        ]
        wait_until(self.sentinels_ready, CLUSTER_TIMEOUT, "the sentinels to agree")

    def _add(self, folder: Path, config: str, sentinel: bool = False) -> Node:
        node = Node(folder, config, sentinel)
        self.nodes.append(node)
        wait_until(node.responds, CLUSTER_TIMEOUT, f"port {node.port} to respond")
        return node

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0?wait_replicas=1&wait_timeout=2"

    def replica_linked(self, node: Node | None = None) -> bool:
        info = (node or self.replica).client.info("replication")
        return info["role"] == "slave" and info["master_link_status"] == "up"

    def sentinels_ready(self) -> bool:
        """Return whether every sentinel lists the replica and the two other sentinels."""
        for sentinel in self.sentinels:
            replicas = sentinel.client.sentinel_slaves(SERVICE)
            if not any(r["port"] == self.replica.port for r in replicas):
                return False
            if any(r["flags"] != "slave" for r in replicas):
                return False
            if len(sentinel.client.sentinel_sentinels(SERVICE)) != 2:
                return False
        return True

    def master_ports(self) -> set[int]:
        """Return the master port that each sentinel reports."""
        return {
            int(s.client.sentinel_get_master_addr_by_name(SERVICE)[1])
            for s in self.sentinels
        }

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path / "cluster")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def engine(cluster: Cluster) -> Iterator[Engine]:
    opened = open_test_engine(cluster.url)
    try:
        yield opened
    finally:
        opened.close(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_burst_survives_sentinel_failover(cluster: Cluster, engine: Engine) -> None:
    """Move the master with SENTINEL FAILOVER while a thread submits tasks."""
    old_master, new_master = cluster.master, cluster.replica
    engine.start_workers(scheduler=True)
    burst = Burst(engine, "sentinel")
    burst.thread.start()
    wait_until(lambda: burst.counts()[0] >= 200, 60, "200 accepted submits")

    assert cluster.sentinels[0].client.sentinel_failover(SERVICE)
    wait_until(
        lambda: cluster.master_ports() == {new_master.port},
        CLUSTER_TIMEOUT,
        "every sentinel to name the replica as master",
    )
    wait_until(
        lambda: cluster.replica_linked(old_master),
        CLUSTER_TIMEOUT,
        "the old master to rejoin as a replica",
    )
    switched = burst.counts()[0]
    wait_until(
        lambda: burst.counts()[0] >= switched + 200,
        60,
        "200 accepted submits on the new master",
    )
    burst.stop.set()
    burst.thread.join(60)
    assert not burst.thread.is_alive()
    assert burst.unexpected == []

    service = engine.task_service
    wait_final_all(engine, burst.accepted, FINISH_TIMEOUT)
    for task_id in burst.accepted:
        record = service.get_status(task_id)
        number = int(task_id.split("-")[1])
        if number % 10 == 9:
            assert record.status is TaskStatus.FAILURE, task_id
            assert f"task {number} fails on purpose" in (record.error or ""), task_id
        else:
            assert record.status is TaskStatus.SUCCESS, task_id
            assert record.result == number, task_id
    for task_id in burst.rejected:
        with pytest.raises(TaskNotFoundError):
            service.get_status(task_id)
    stored_unconfirmed = []
    for task_id in burst.unconfirmed:
        try:
            stored_unconfirmed.append(service.get_status(task_id).task_id)
        except TaskNotFoundError:
            continue
    wait_final_all(engine, stored_unconfirmed, FINISH_TIMEOUT)
    expected = len(burst.accepted) + len(stored_unconfirmed)
    assert service.count_tasks() == expected

    # Workers, Huey's schedule movers and the cron scheduler all survived.
    assert len(engine.pool.local_workers()) == sum(engine.config.workers.values())
    assert all(r.scheduler.is_alive() for r in engine.pool.runtimes.values())
    assert engine.scheduler_service._thread is not None
    assert engine.scheduler_service._thread.is_alive()

    # New tasks, due now and later, run and are stored on the new master.
    assert new_master.client.info("replication")["role"] == "master"
    now_id = service.submit("sentinel_echo", number=1)
    later_id = service.submit("sentinel_echo", number=2, countdown=0.3)
    for task_id, number in ((now_id, 1), (later_id, 2)):
        record = wait_final(engine, task_id, timeout=30)
        assert record.status is TaskStatus.SUCCESS
        assert record.result == number
        key = f"chenu:{engine.config.namespace}:task:{task_id}"
        assert new_master.client.exists(key)
