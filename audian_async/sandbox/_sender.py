"""Signed, ordered, at-least-once webhook delivery for the sandbox.

Each (call, URL) pair is a lane: its events go out one at a time, in order, and the next one
waits until the previous one was acknowledged (2xx) or given up. Failed attempts (non-2xx,
timeout, connection error) are redelivered with exponential backoff under the same
``webhook-id``, freshly signed. A redirect (3xx) is a failed attempt too, never followed, as
most webhook senders do not follow them: its record names the status and ``Location``, and the
first one from each URL is logged at WARNING, since it usually means a misconfigured URL (a
framework's mount redirecting ``/webhooks`` to ``/webhooks/``) that loses every delivery.
Ready deliveries wait in one bounded queue served by a few worker tasks, so delivery never
blocks the API.

The HTTP/1.1 client is a small keep-alive one over anyio streams: webhook bodies are tiny and
the sandbox may send thousands a second, where a general-purpose client would cost more CPU
than the whole API it serves.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._json import dumps
from ..webhooks._signing import sign
from ._chance import Chance
from ._records import SandboxEvent

__all__ = ["Delivery", "WebhookDeliverer"]

logger = logging.getLogger("audian_async.sandbox")

_MAX_RESPONSE = 1 << 20
_MAX_REDIRECT_URLS = 1024  # URLs whose redirect was logged, before they may be again
_MAX_IDLE_PER_URL = 64


@attrs.frozen
class Delivery:
    """One delivery attempt (or a deliberate drop) of one event to one URL.

    ``status_code`` is the receiver's HTTP status, or None when the attempt failed with
    ``error`` (timeout, refused...) or was ``dropped`` by the ``drop_rate`` knob (never sent).
    ``duplicate`` marks the extra copy sent by the ``duplicate_rate`` knob. ``latency`` is
    how many seconds the attempt took (None when nothing was sent) and ``signature`` the
    ``webhook-signature`` header it carried.
    """

    webhook_id: str
    event: str
    call_id: str
    url: str
    attempt: int
    status_code: int | None = None
    error: str | None = None
    dropped: bool = False
    duplicate: bool = False
    at: float = attrs.field(factory=time.time)
    latency: float | None = None
    signature: str | None = None

    @property
    def ok(self) -> bool:
        """True when the receiver acknowledged this attempt with a 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


def _nothing() -> None:
    """The default ``on_record``."""


class _Job:
    __slots__ = (
        "attempt",
        "body",
        "call_id",
        "duplicated",
        "event",
        "url",
        "url_index",
        "webhook_id",
    )

    def __init__(self, event: SandboxEvent, url: str, url_index: int, body: bytes) -> None:
        self.webhook_id = event.id
        self.event = event.type
        self.call_id = event.call_id
        self.url = url
        self.url_index = url_index  # the URL's rank, stable across runs unlike its port
        self.body = body
        self.attempt = 0
        self.duplicated = False


@attrs.frozen
class _Response:
    """What a delivery needs of a receiver's answer."""

    status: int
    reusable: bool
    location: str | None = None  # the Location header of a redirect


class _Connection:
    """One keep-alive HTTP/1.1 connection with a read buffer."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        data = await self.stream.receive(65536)
        self.buffer += data

    async def _read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > _MAX_RESPONSE:
                raise ValueError("response line too long")
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def _skip(self, size: int) -> None:
        while len(self.buffer) < size:
            await self._fill()
        del self.buffer[:size]

    async def read_response(self) -> _Response:
        """Read one response: its status, whether the connection can be reused, and where a
        redirect points."""
        while True:
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                if len(self.buffer) > 65536:
                    raise ValueError("response headers too large")
                await self._fill()
            head = bytes(self.buffer[:end]).split(b"\r\n")
            del self.buffer[: end + 4]
            status = _status(head[0])
            if status >= 200:
                break  # 1xx interim responses are skipped
        length: int | None = None
        chunked = False
        location: str | None = None
        reusable = head[0].startswith(b"HTTP/1.1")
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                if not value.isdigit():
                    raise ValueError(f"bad Content-Length {value[:32]!r}")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                reusable = value == b"keep-alive" or (reusable and value != b"close")
            elif name == b"location" and 300 <= status < 400:
                # Raw, not lowercased; bounded so a hostile receiver cannot bloat the records.
                location = line.partition(b":")[2].strip()[:512].decode("latin-1")
        if status in (204, 304):
            pass  # never a body, whatever the headers say (RFC 9112 section 6.3)
        elif chunked:
            total = 0
            while True:
                size_field = (await self._read_line()).split(b";")[0].strip()
                if not size_field or size_field.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError(f"bad chunk size {size_field[:32]!r}")
                size = int(size_field, 16)
                if size == 0:
                    while await self._read_line():  # trailers end with an empty line
                        pass
                    break
                total += size
                if total > _MAX_RESPONSE:
                    return _Response(status, False, location)
                await self._skip(size + 2)
        elif length is not None:
            if length > _MAX_RESPONSE:
                return _Response(status, False, location)
            await self._skip(length)
        else:
            reusable = False  # body runs to EOF: do not read it, just drop the connection
        return _Response(status, reusable, location)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


def _status(line: bytes) -> int:
    """The status of an ``HTTP/1.x NNN reason`` line; ValueError for anything else."""
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if (
        not version.startswith(b"HTTP/1.")
        or len(code) != 3
        or not code.isdigit()
        or rest[3:4] not in (b"", b" ")
    ):
        raise ValueError(f"malformed status line {line[:64]!r}")
    return int(code)


class _Endpoint:
    """A parsed webhook URL with its pool of idle connections."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s)://host[:port]/path, got {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        host_header = parts.netloc.rpartition("@")[2]
        self.prefix = (
            f"POST {target} HTTP/1.1\r\nHost: {host_header}\r\n"
            "User-Agent: audian-sandbox\r\nContent-Type: application/json\r\n"
        ).encode()
        self.idle: list[_Connection] = []

    async def connect(self) -> _Connection:
        stream: anyio.abc.ByteStream
        if self.tls:
            stream = await anyio.connect_tcp(self.host, self.port, tls=True, tls_hostname=self.host)
        else:
            stream = await anyio.connect_tcp(self.host, self.port)
        return _Connection(stream)

    async def post(self, headers: bytes, body: bytes) -> _Response:
        """Send one request, reusing an idle connection when there is one."""
        message = self.prefix + headers + body
        while self.idle:
            connection = self.idle.pop()
            try:
                await connection.stream.send(message)
                response = await connection.read_response()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                # The receiver closed this idle connection; nothing was read, try a fresh one.
                await connection.aclose()
                continue
            except BaseException:
                await connection.aclose()
                raise
            await self._release(connection, response.reusable)
            return response
        connection = await self.connect()
        try:
            await connection.stream.send(message)
            response = await connection.read_response()
        except BaseException:
            await connection.aclose()
            raise
        await self._release(connection, response.reusable)
        return response

    async def _release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and len(self.idle) < _MAX_IDLE_PER_URL and not connection.buffer:
            self.idle.append(connection)
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        while self.idle:
            await self.idle.pop().aclose()


class WebhookDeliverer:
    """Delivers emitted events to every configured URL (see the module docstring).

    ``key`` is the HMAC key, already decoded from the ``whsec_`` secret.
    ``schedule(delay, callback)`` runs a callback later on the same loop (the sandbox's timer
    heap); ``speed`` scales the redelivery backoff like every other simulated duration.

    With ``seed``, whether a delivery is dropped or duplicated depends only on the seed, the
    knob, the webhook id and the URL's rank (see :class:`~._chance.Chance`): never on which
    worker finished first.
    """

    def __init__(
        self,
        *,
        key: bytes,
        urls: list[str],
        schedule: Callable[[float, Callable[[], None]], None],
        speed: float = 1.0,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        seed: int | None = None,
        max_attempts: int = 5,
        retry_base: float = 2.0,
        timeout: float = 5.0,
        workers: int = 16,
        max_pending: int = 100_000,
        max_records: int = 100_000,
    ) -> None:
        self._key = key  # the decoded HMAC key of the whsec_ secret
        self.urls: tuple[str, ...] = ()
        self._endpoints: dict[str, _Endpoint] = {}
        for url in urls:
            self.add_url(url)
        self.schedule = schedule
        self.speed = speed
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate
        self.chance = Chance(seed)
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.timeout = timeout
        self.workers = workers
        self.max_pending = max_pending
        self.records: deque[Delivery] = deque(maxlen=max_records)
        self.recorded = 0  # every record ever made: the cursor of readers of `records`
        self.on_record: Callable[[], None] = _nothing
        self.pending = 0
        self.delivered = 0
        self._lanes: dict[tuple[str, str], deque[_Job]] = {}
        self._redirecting: set[str] = set()  # URLs whose redirect was logged already
        # Made by run(), on the loop that serves them, and closed when it ends.
        self._send: MemoryObjectSendStream[_Job] | None = None

    def add_url(self, url: str) -> None:
        """Deliver every later event to ``url`` as well."""
        if url not in self._endpoints:
            self._endpoints[url] = _Endpoint(url)
            self.urls = (*self.urls, url)

    # --- producing ----------------------------------------------------------------------

    def enqueue(self, event: SandboxEvent) -> None:
        """Queue ``event`` for every URL (never blocks; over ``max_pending`` it is dropped)."""
        if not self.urls:
            return
        body = dumps(event.envelope())
        for index, url in enumerate(self.urls):
            job = _Job(event, url, index, body)
            if self.pending >= self.max_pending:
                self._record(job, error="overflow: too many pending deliveries", dropped=True)
                continue
            self.pending += 1
            key = (job.call_id, url)
            lane = self._lanes.get(key)
            if lane is not None:
                lane.append(job)  # an earlier event of this call is still in flight
            else:
                self._lanes[key] = deque()
                self._submit(job)

    def _submit(self, job: _Job) -> None:
        if job.attempt == 0 and self.chance.decide(
            self.drop_rate, "webhook.drop", job.webhook_id, job.url_index
        ):
            self._record(job, dropped=True)
            self._finish(job)
            return
        self._put(job)

    def _put(self, job: _Job) -> None:
        if self._send is None:  # stopped: the delivery is abandoned
            self.pending -= 1
            return
        self._send.send_nowait(job)  # cannot overflow: at most `pending` jobs are queued

    def _finish(self, job: _Job) -> None:
        self.pending -= 1
        key = (job.call_id, job.url)
        lane = self._lanes.get(key)
        if lane:
            self._submit(lane.popleft())
        else:
            self._lanes.pop(key, None)

    def _record(
        self,
        job: _Job,
        *,
        status_code: int | None = None,
        error: str | None = None,
        dropped: bool = False,
        duplicate: bool = False,
        latency: float | None = None,
        signature: str | None = None,
    ) -> None:
        self.recorded += 1
        self.records.append(
            Delivery(
                webhook_id=job.webhook_id,
                event=job.event,
                call_id=job.call_id,
                url=job.url,
                attempt=job.attempt + 1,
                status_code=status_code,
                error=error,
                dropped=dropped,
                duplicate=duplicate,
                latency=latency,
                signature=signature,
            )
        )
        self.on_record()

    # --- consuming ----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve the queue with ``workers`` tasks until cancelled."""
        send, receive = anyio.create_memory_object_stream[_Job](self.max_pending)
        self._send = send
        try:
            with send, receive:
                async with anyio.create_task_group() as tg:
                    for _ in range(self.workers):
                        tg.start_soon(self._worker, receive)
                    task_status.started()
        finally:
            self._send = None

    async def aclose(self) -> None:
        """Close idle connections (call after the workers stopped)."""
        for endpoint in self._endpoints.values():
            await endpoint.aclose()

    async def _worker(self, receive: MemoryObjectReceiveStream[_Job]) -> None:
        async for job in receive:
            await self._attempt(job)

    def _redirected(self, url: str, response: _Response) -> str:
        """The error of a delivery answered with a redirect, which is not followed."""
        where = "no Location" if response.location is None else f"Location {response.location}"
        error = f"redirect {response.status} ({where}) not followed: a failed delivery"
        if url not in self._redirecting:
            if len(self._redirecting) >= _MAX_REDIRECT_URLS:  # bounded: URLs come per call
                self._redirecting.clear()
            self._redirecting.add(url)
            logger.warning(
                "webhook URL %s answered redirect %d (%s), which is not followed: every "
                "delivery to it fails; configure the URL the receiver serves",
                url,
                response.status,
                where,
            )
        return error

    async def _attempt(self, job: _Job) -> None:
        endpoint = self._endpoints[job.url]
        status: int | None = None
        error: str | None = None
        signature: str | None = None
        started = time.perf_counter()
        try:
            timestamp = int(time.time())
            signature = sign(self._key, job.webhook_id, timestamp, job.body)
            headers = (
                f"Content-Length: {len(job.body)}\r\nwebhook-id: {job.webhook_id}\r\n"
                f"webhook-timestamp: {timestamp}\r\nwebhook-signature: {signature}\r\n\r\n"
            ).encode()
            with anyio.fail_after(self.timeout):
                response = await endpoint.post(headers, job.body)
            status = response.status
            if 300 <= status < 400:
                error = self._redirected(job.url, response)
        except TimeoutError:
            error = f"timed out after {self.timeout:g}s"
        except (OSError, ValueError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # one odd receiver (or bug) must not stop every delivery
            logger.exception("webhook %s to %s: unexpected failure", job.webhook_id, job.url)
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        self._record(
            job,
            status_code=status,
            error=error,
            duplicate=job.duplicated,
            latency=time.perf_counter() - started,
            signature=signature,
        )
        if ok:
            self.delivered += 1
            if not job.duplicated and self.chance.decide(
                self.duplicate_rate, "webhook.duplicate", job.webhook_id, job.url_index
            ):
                job.duplicated = True
                self._put(job)  # the same delivery again, same webhook-id
                return
            self._finish(job)
            return
        job.attempt += 1
        if job.attempt >= self.max_attempts:
            self._finish(job)  # given up: the next event of this call may go
            return
        delay = self.retry_base * 2 ** (job.attempt - 1) / self.speed
        self.schedule(max(delay, 0.01), lambda: self._put(job))
