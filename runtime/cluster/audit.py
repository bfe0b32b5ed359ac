"""Each instance's audit log, mirrored to a JetStream stream (`gati_<namespace>_audit`), and read back.

An instance keeps writing its own hash-chained log in its state directory (runtime/core/
audit_log.py): a decision is never held up by the network. A mirror on the connection's loop
tails that file and publishes each record, byte for byte, to subject
`gati.<namespace>.audit.<instance>`, so every instance's chain stays verifiable on its own.
Each record goes out with the message id `<instance>:<seq>`: JetStream drops a record sent
twice (a retry, two processes sharing one state directory), and the mirror resumes after the
last record the stream holds for its instance. While NATS is down records wait in the file
and go out when it is back. After each batch the mirror signs a head checkpoint for the last
record the stream holds (runtime/core/audit_head.py) into bucket `gati_<namespace>_audit_heads`:
records cut from the end of the stream show up as a log ending before its head.

`fetch_logs` writes every instance's mirrored records back into one file per instance, with
its head beside it (read first: records mirrored meanwhile land after it, as for a local
log), which `gati audit --cluster` verifies and reports on (runtime/reports/cluster.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Callable

import nats.js.errors
from nats.js.api import DeliverPolicy, StorageType, StreamConfig

from runtime.cluster.connection import TRANSPORT_ERRORS, Cluster
from runtime.cluster.jetstream import Bucket
from runtime.core.audit_head import Head, head_path
from runtime.core.audit_key import AuditKey

log = logging.getLogger("gati.cluster")

POLL_S = 0.2
BATCH = 256  # records published before waiting for their acknowledgements
INSTANCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def stream_name(cluster: Cluster) -> str:
    return cluster.bucket("audit")


def subject(cluster: Cluster, instance: str = "*") -> str:
    return f"gati.{cluster.namespace}.audit.{instance}"


async def open_heads(cluster: Cluster) -> Bucket:
    return await Bucket.open(cluster.js, cluster.bucket("audit_heads"), description="gati audit: each instance's signed head")


async def open_stream(cluster: Cluster) -> None:
    try:
        await cluster.js.stream_info(stream_name(cluster))
    except nats.js.errors.NotFoundError:
        await cluster.js.add_stream(
            StreamConfig(name=stream_name(cluster), subjects=[subject(cluster, ">")], storage=StorageType.FILE, description="gati audit logs, one subject per instance")
        )


class AuditMirror:
    def __init__(self, cluster: Cluster, log_path: Path, instance: str, key: Callable[[], AuditKey | None]):
        self.cluster = cluster
        self.key = key  # the log's key once it has one (a key file is made with the first record): signs the mirrored head
        self.path = log_path
        self.instance = instance
        self.subject = subject(cluster, instance)
        self.mirrored = 0  # the seq of the last record the stream is known to hold
        self._offset = 0  # where in the file the next unmirrored record starts
        self._task = None
        self._heads: Bucket | None = None

    def start(self) -> "AuditMirror":
        self.cluster.run(open_stream(self.cluster))
        self._heads = self.cluster.run(open_heads(self.cluster))
        self._task = self.cluster.spawn(self._run())
        return self

    async def _run(self) -> None:
        resumed, failing = False, False
        while True:
            try:
                if not self.cluster.healthy():
                    resumed = False  # after an outage, ask the stream again where it stands
                else:
                    if not resumed:
                        self.mirrored, self._offset = await self._last_mirrored(), 0
                        resumed = True
                    await self._send_new()
                    failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # kept alive through any outage; said once per outage
                if not failing:
                    log.warning("audit mirror: %s: %s (records wait in %s)", type(exc).__name__, exc, self.path)
                failing = True
                resumed = resumed and not isinstance(exc, TRANSPORT_ERRORS)
            await asyncio.sleep(POLL_S)

    async def _last_mirrored(self) -> int:
        try:
            msg = await self.cluster.js.get_msg(stream_name(self.cluster), subject=self.subject)
        except nats.js.errors.NotFoundError:
            return 0
        return json.loads(msg.data)["seq"]

    async def _send_new(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # only whole lines: a writer may be in the middle of one
        pending: list[tuple[int, bytes, str]] = []  # (seq, line, its hash)
        for line in chunk[:end].splitlines(keepends=True):
            if not line.strip():
                continue
            record = json.loads(line)
            if record["seq"] > self.mirrored:
                pending.append((record["seq"], line.rstrip(b"\n"), record.get("hash", "")))
            if len(pending) >= BATCH:
                await self._publish(pending)
                pending = []
        if pending:
            await self._publish(pending)
        self._offset = self._offset + end

    async def _publish(self, records: list[tuple[int, bytes, str]]) -> None:
        await asyncio.gather(
            *(self.cluster.js.publish(self.subject, line, headers={"Nats-Msg-Id": f"{self.instance}:{seq}"}) for seq, line, _ in records)
        )
        seq, _, record_hash = records[-1]
        key = self.key()
        if key is not None and self._heads is not None:
            await self._heads.publish(self.instance, Head.sign(seq, record_hash, key).encode(), None)
        self.mirrored = seq

    async def wait_mirrored(self, seq: int, timeout_s: float) -> bool:
        """For tests and shutdown: wait until the stream holds this instance's record `seq`."""
        async with asyncio.timeout(timeout_s):
            while self.mirrored < seq:
                await asyncio.sleep(POLL_S / 4)
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def _fetch(cluster: Cluster, folder: Path) -> dict[str, Path]:
    await open_stream(cluster)
    heads = await open_heads(cluster)
    signed = {}
    for instance in await heads.keys():  # first: records mirrored while we read land after the head
        last = await heads.last(instance)
        if last.value:
            signed[instance] = last.value
    info = await cluster.js.stream_info(stream_name(cluster))
    last = info.state.last_seq
    logs: dict[str, Path] = {}
    files = {}
    if info.state.messages:
        sub = await cluster.js.subscribe(subject(cluster, ">"), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        try:
            while True:
                msg = await sub.next_msg(timeout=cluster.timeout_s)
                instance = msg.subject.rsplit(".", 1)[1]
                if instance not in files:
                    logs[instance] = folder / f"{instance}.log"
                    files[instance] = open(logs[instance], "wb")
                files[instance].write(msg.data + b"\n")
                if msg.metadata.sequence.stream >= last:
                    break
        finally:
            await sub.unsubscribe()
            for f in files.values():
                f.close()
    for instance, head in signed.items():
        if instance in logs:
            head_path(logs[instance]).write_bytes(head)
    return logs


def fetch_logs(cluster: Cluster, folder: Path) -> dict[str, Path]:
    """Write every instance's mirrored records to FOLDER/<instance>.log; returns them by instance."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in (*folder.glob("*.log"), *folder.glob("*.head")):
        old.unlink()
    return cluster.run(_fetch(cluster, folder), timeout_s=max(cluster.timeout_s, 300.0))
