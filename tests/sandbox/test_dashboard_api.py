"""The dashboard's JSON API: what it shows, what it hides, and who may change the knobs."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncIterator

import httpx
import pytest

import audian_async as au
from audian_async.sandbox import Faults, Sandbox
from audian_async.sandbox._dashboard_views import mask
from audian_async.sandbox._journal import Journal, RequestRecord

from .conftest import OWNED, Receiver

pytestmark = pytest.mark.anyio

API_KEY = "sk_test_dashboard_abcd1234"
CHANGE = {"X-Audian-Dashboard": "1"}


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(speed=200, api_key=API_KEY) as sandbox:
        yield sandbox


@pytest.fixture
async def http(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.dashboard_url.rstrip("/")) as client:
        yield client


def test_mask_never_shows_a_secret_whole() -> None:
    assert mask("sk_test_sandbox") == "sk_…dbox"
    assert mask("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == "whsec_…LaSw"
    assert mask("short") == "…"
    assert mask("") == "…"


def test_the_journal_is_a_bounded_ring() -> None:
    journal = Journal(max_requests=3, max_call_changes=2)
    for n in range(5):
        journal.add_request(RequestRecord("GET", f"/v2/calls/{n}"))
        journal.call_changed(f"call_{n}")
    assert [r.path for r in journal.requests] == ["/v2/calls/2", "/v2/calls/3", "/v2/calls/4"]
    assert journal.requests_total == 5
    assert list(journal.call_changes) == ["call_3", "call_4"]
    assert journal.version == 10


async def test_the_page_and_the_dashboard_url(sb: Sandbox, http: httpx.AsyncClient) -> None:
    assert sb.dashboard_url == f"http://127.0.0.1:{sb.port}/"
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # Everything the page names is served, from the package (no CDN).
    for asset in re.findall(r"/_dashboard/static/([\w./-]+)", page.text):
        served = await http.get(f"/_dashboard/static/{asset}")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith(("text/javascript", "text/css"))
    assert "https:" not in page.text
    assert (await http.get("/_dashboard/static/no-such-file.js")).status_code == 404
    assert (await http.get("/_dashboard/static/../_dashboard.py")).status_code == 404
    assert (await http.post("/")).status_code == 405
    assert (await http.get("/_dashboard/api/nothing")).status_code == 404
    # Dashboard requests are not API requests: not counted, not journaled.
    assert sb.stats["requests"] == 0


async def test_overview_masks_the_key_and_the_secret(sb: Sandbox, http: httpx.AsyncClient) -> None:
    overview = (await http.get("/_dashboard/api/overview")).json()
    assert overview["sandbox"]["api_key"] == "sk_…1234"
    assert overview["sandbox"]["webhook_secret"] == f"whsec_…{sb.webhook_secret[-4:]}"
    assert overview["sandbox"]["base_url"] == sb.base_url
    assert overview["limits"]["requests"] == 2_000
    for path in ("overview", "faults", "calls", "deliveries", "requests", "recordings"):
        text = (await http.get(f"/_dashboard/api/{path}")).text
        assert API_KEY not in text
        assert sb.webhook_secret.removeprefix("whsec_") not in text


async def test_calls_and_their_timeline(sb: Sandbox, http: httpx.AsyncClient) -> None:
    control = au.CallControl(on_answered=[au.PlayAudio(message="Hello"), au.Hangup()])
    call = await sb.client.calls.create(from_=OWNED, to="+14155552672", call_control=control)
    busy = await sb.client.calls.create(from_=OWNED, to="+14155550101")
    await sb.wait_idle()
    calls = (await http.get("/_dashboard/api/calls")).json()
    assert [c["call_id"] for c in calls] == [busy.call_id, call.call_id]  # newest first
    assert calls[0]["status"] == "failed"
    assert calls[0]["reason"] == "busy"
    failed = (await http.get("/_dashboard/api/calls", params={"status": "failed"})).json()
    assert [c["call_id"] for c in failed] == [busy.call_id]
    detail = (await http.get(f"/_dashboard/api/calls/{call.call_id}")).json()
    assert [e["type"] for e in detail["events"]] == [
        "call.initiated",
        "call.ringing",
        "call.answered",
        "call.completed",
    ]
    assert detail["actions"] == ["play_audio", "hangup"]
    assert detail["call"]["status"] == "completed"
    assert (await http.get("/_dashboard/api/calls/call_nope")).status_code == 404
    overview = (await http.get("/_dashboard/api/overview")).json()
    assert overview["calls"] | {"peak_live": 0} == {
        "created": 2,
        "stored": 2,
        "live": 0,
        "scheduled": 0,
        "completed": 1,
        "failed": 1,
        "peak_live": 0,
    }


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
async def test_limits_are_checked(http: httpx.AsyncClient, limit: str) -> None:
    response = await http.get("/_dashboard/api/requests", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_the_request_journal(sb: Sandbox, http: httpx.AsyncClient) -> None:
    first = await sb.client.calls.create(from_=OWNED, to="+14155552672", idempotency_key="k-1")
    again = await sb.client.calls.create(from_=OWNED, to="+14155552672", idempotency_key="k-1")
    assert again.call_id == first.call_id
    sb.faults.error_rate["GET /v2/calls/{id}"] = 1.0
    with pytest.raises(au.ServerError):
        await sb.client.with_options(max_retries=0).calls.get(first.call_id)
    requests = (await http.get("/_dashboard/api/requests")).json()
    assert [(r["method"], r["status"]) for r in requests] == [
        ("GET", 503),
        ("POST", 201),
        ("POST", 201),
    ]
    injected, replayed, placed = requests
    assert injected["fault"] == "error"
    assert injected["error"] == "service_unavailable"
    assert injected["path"] == f"/v2/calls/{first.call_id}"
    assert replayed["replay"] is True
    assert placed["replay"] is False
    assert replayed["idempotency_key"] == placed["idempotency_key"] == "k-1"
    assert all(r["latency_ms"] >= 0 for r in requests)
    limited = (await http.get("/_dashboard/api/requests", params={"limit": 1})).json()
    assert limited == [injected]


async def test_deliveries_show_status_latency_and_a_truncated_signature(
    receiver: Receiver,
) -> None:
    async with Sandbox(speed=200, webhook_urls=[receiver.url]) as sb:
        call = await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_idle()
        async with httpx.AsyncClient(base_url=sb.dashboard_url.rstrip("/")) as http:
            rows = (await http.get("/_dashboard/api/deliveries")).json()
            own = (
                await http.get("/_dashboard/api/deliveries", params={"call_id": call.call_id})
            ).json()
    assert [r["event"] for r in rows] == ["call.failed", "call.initiated"]
    assert own == rows
    sent = {headers["webhook-signature"] for headers, _ in receiver.requests}
    for row in rows:
        assert row["status_code"] == 200
        assert row["ok"] is True
        assert row["attempt"] == 1
        assert row["latency_ms"] >= 0
        assert row["signature"].endswith("…")
        assert len(row["signature"]) == 13
        assert any(s.startswith(row["signature"][:-1]) for s in sent)
        assert row["signature"][:-1] not in sent  # never the whole header


async def test_recordings_and_their_audio(sb: Sandbox, http: httpx.AsyncClient) -> None:
    call = await sb.client.calls.create(
        from_=OWNED, to="+14155552672", recording=au.Recording(format="mp3")
    )
    await sb.wait_idle()
    (recording,) = (await http.get("/_dashboard/api/recordings")).json()
    assert recording["call_id"] == call.call_id
    assert recording["requested_format"] == "mp3"
    sb.faults.error_rate["*"] = 1.0  # the dashboard's player is not the API: no faults
    audio = await http.get(recording["audio_url"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert wav.getframerate() == 8000
    assert (await http.get("/_dashboard/api/recordings/rec_nope/audio")).status_code == 404


async def test_a_knob_changed_here_changes_the_api(sb: Sandbox, http: httpx.AsyncClient) -> None:
    change = {"error_rate": {"POST /v2/calls": 1.0}, "error_status": 502, "max_concurrent": 7}
    response = await http.patch("/_dashboard/api/faults", json=change, headers=CHANGE)
    assert response.status_code == 200
    knobs = response.json()
    assert knobs["error_rate"] == {"POST /v2/calls": 1.0}
    assert knobs["error_status"] == 502
    assert (await http.get("/_dashboard/api/faults")).json() == knobs
    assert sb.faults.error_rate == {"POST /v2/calls": 1.0}
    assert sb.max_concurrent == 7
    with pytest.raises(au.ServerError) as failed:
        await sb.client.with_options(max_retries=0).calls.create(from_=OWNED, to="+14155552672")
    assert failed.value.status_code == 502
    cleared = {"error_rate": {"POST /v2/calls": 0}}
    assert (await http.patch("/_dashboard/api/faults", json=cleared, headers=CHANGE)).json()[
        "error_rate"
    ] == {}
    await sb.client.calls.create(from_=OWNED, to="+14155552672")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latency": -1}, "latency"),
        ({"latency": "1"}, "latency"),
        ({"error_rate": {"POST /v2/nope": 0.5}}, "error_rate.POST /v2/nope"),
        ({"no_reply_rate": {"*": 2}}, "no_reply_rate.*"),
        ({"error_status": 404}, "error_status"),
        ({"max_concurrent": True}, "max_concurrent"),
        ({"api_key": "x"}, "api_key"),
        ({"latency": 0.5, "drop_rate": 7}, "drop_rate"),
    ],
)
async def test_a_bad_knob_changes_nothing(
    sb: Sandbox, http: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    response = await http.patch("/_dashboard/api/faults", json=change, headers=CHANGE)
    assert response.status_code == 400
    assert response.json()["message"].startswith(f"{field}: ")
    assert sb.faults == Faults()


async def test_knobs_change_only_from_the_dashboard_itself(
    sb: Sandbox, http: httpx.AsyncClient
) -> None:
    change = {"latency": 1.0}
    refused = [
        # What a form or a simple fetch of another site can send:
        await http.patch("/_dashboard/api/faults", json=change),
        await http.post("/_dashboard/api/faults", json=change, headers=CHANGE),
        await http.patch(
            "/_dashboard/api/faults",
            content=b'{"latency": 1.0}',
            headers={**CHANGE, "Content-Type": "text/plain"},
        ),
        await http.patch(
            "/_dashboard/api/faults",
            json=change,
            headers={**CHANGE, "Origin": "http://evil.example"},
        ),
        # A DNS-rebinding page: same origin to the browser, but its own host name.
        await http.patch(
            "/_dashboard/api/faults",
            json=change,
            headers={**CHANGE, "Host": f"evil.example:{sb.port}"},
        ),
    ]
    assert [r.status_code for r in refused] == [403, 405, 415, 403, 403]
    assert sb.faults.latency == 0.0
    origin = sb.dashboard_url.rstrip("/")
    same = await http.patch(
        "/_dashboard/api/faults", json=change, headers={**CHANGE, "Origin": origin}
    )
    assert same.status_code == 200
    assert sb.faults.latency == 1.0


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "10.0.0.1", "[fe80::1]:1"])
async def test_only_loopback_host_names_are_answered(
    sb: Sandbox, http: httpx.AsyncClient, host: str
) -> None:
    for path in ("/", "/_dashboard/api/overview", "/_dashboard/api/events"):
        response = await http.get(path, headers={"Host": host})
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden_host"
    for name in (f"localhost:{sb.port}", f"127.0.0.1:{sb.port}", "[::1]", "LOCALHOST"):
        assert (await http.get("/_dashboard/api/overview", headers={"Host": name})).is_success
