"""The web views on a live worker: ``/teams``, the traceability CSV, the heat map page
(rendered by headless Chromium), and routing to the worker that holds the team table."""

from __future__ import annotations

import asyncio
import html.parser
import os
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest

from scoring.rollup.config import RollupConfig
from scoring.rollup.heatmap import WEEK_MS, last_boundary
from scoring.timeutil import format_ts, parse_ts
from tests.integration.scenario import DAY, HOUR
from tests.support.workers import Deployment, Record, Worker

TOKEN = "s3cret-web-token"
CFG = RollupConfig()  # the worker runs with the defaults: Asia/Shanghai, Friday 17:00
TEAMS = {"c1": ("team-red", "east"), "c2": ("team-gold", "east"), "c3": ("team-west", "west")}
WEIGHTS = {"action_completion": 0.4, "signal_strength": 0.35, "fulfilment": 0.25}
ALL = ["action_completion", "signal_strength", "fulfilment"]

# Hand-computed (SPEC: 40 % actions, 35 % signal strength, 25 % fulfilment; strength =
# clamp(net points / 26 * 100, 0, 100) per active customer; missing components rescale):
#   team-red  (east): decision_chain +12 and urgency +6 = 18 -> 18/26*100 = 69.2308
#                     actions 1 of 4 on time = 25; fulfilment 100 - mean(30 %, 50 %) = 60
#                     0.4*25 + 0.35*69.2308 + 0.25*60 = 10 + 24.2308 + 15 = 49.2308 -> 49.23 red
#   team-gold (east): high_intent +8 -> 8/26*100 = 30.7692; actions 2 of 2 = 100;
#                     fulfilment 100 - 5 = 95
#                     40 + 0.35*30.7692 + 0.25*95 = 40 + 10.7692 + 23.75 = 74.5192 -> 74.52 yellow
#   team-west (west): decision_chain +12 and high_intent +8 = 20 -> 76.9231; actions 3 of 3
#                     = 100; no forecast outcome, so weights 0.4 + 0.35 = 0.75:
#                     (40 + 0.35*76.9231) / 0.75 = 66.9231 / 0.75 = 89.2308 -> 89.23 green
EXPECTED = [
    {"team_id": "team-gold", "region": "east", "score": 74.52, "band": "yellow",
     "components": {"action_completion": 100.0, "signal_strength": 30.77, "fulfilment": 95.0},
     "components_used": ALL, "weights": WEIGHTS},
    {"team_id": "team-red", "region": "east", "score": 49.23, "band": "red",
     "components": {"action_completion": 25.0, "signal_strength": 69.23, "fulfilment": 60.0},
     "components_used": ALL, "weights": WEIGHTS},
    {"team_id": "team-west", "region": "west", "score": 89.23, "band": "green",
     "components": {"action_completion": 100.0, "signal_strength": 76.92, "fulfilment": None},
     "components_used": ["action_completion", "signal_strength"], "weights": WEIGHTS},
]
RED_IP, RUSH_IP = "203.0.113.10", "203.0.113.11"


def ev(topic: str, event_id: str, ts: int, customer: str, ip: str = "198.51.100.20", **fields: Any) -> Record:
    return topic, customer, {"event_id": event_id, "ts": ts, "customer_id": customer, "ip": ip, **fields}


def build_log(now: int) -> tuple[list[Record], list[Record], int]:
    """The directory, everything else, and the heat map boundary the red team's signals precede."""
    t0 = now - now % 1000
    boundary = last_boundary(now, CFG)  # the newest Friday 17:00 (Asia/Shanghai) <= now
    directory: list[Record] = [
        ("customer-directory", c, {"customer_id": c, "team_id": t, "region": r, "rep_id": "rep-" + c})
        for c, (t, r) in TEAMS.items()
    ]
    log: list[Record] = []
    # c1 (team-red): decision chain, completed 2 h before the boundary, and urgency 1 h before
    # it: both lie in the week [boundary - 7 d, boundary), the CSV's default week
    log += [ev("role-login", f"c1-l{i}", boundary - (4 - i) * HOUR, "c1", RED_IP, user_id=f"u{i}", role=role)
            for i, role in enumerate(("procurement", "technical", "legal"))]
    log.append(ev("rush-delivery", "c1-r", boundary - HOUR, "c1", RUSH_IP, contract_id="CT-77"))
    # c2 (team-gold): high intent; c3 (team-west): high intent and a decision chain
    for c in ("c2", "c3"):
        log += [ev("document-open", f"{c}-q{i}", t0 - (4 - i) * HOUR, c, document_type="quote",
                   document_id="q", dwell_seconds=300) for i in range(3)]
    log += [ev("role-login", f"c3-l{i}", t0 - (5 - i) * HOUR, "c3", user_id=f"w{i}", role=role)
            for i, role in enumerate(("procurement", "technical", "legal"))]
    # sales actions, due over the last days: team-red 1 of 4 on time, the others all on time
    for team, customer, late in (("team-red", "c1", (False, True, True, True)),
                                 ("team-gold", "c2", (False, False)),
                                 ("team-west", "c3", (False, False, False))):
        for i, is_late in enumerate(late):
            due = t0 - (i + 1) * DAY
            log.append(ev("sales-action", f"a-{team}-{i}", due - 2 * DAY, customer, opportunity_id=f"o-{team}",
                          team_id=team, action=f"step{i}", due_ts=due, done_ts=due + (HOUR if is_late else -HOUR)))
    # forecast outcomes: team-red off by 30 % and 50 %, team-gold by 5 %, team-west none
    for team, period, forecast, actual in (("team-red", "2026-09", 100_000, 70_000),
                                           ("team-red", "2026-10", 100_000, 50_000),
                                           ("team-gold", "2026-10", 200_000, 190_000)):
        log.append(("forecast-outcome", team, {"event_id": f"{team}-{period}", "ts": t0 - 20 * DAY,
                                               "team_id": team, "period": period,
                                               "forecast_amount": forecast, "actual_amount": actual}))
    return directory, log, boundary


# -- HTTP ------------------------------------------------------------------------------


def get(worker: Worker, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{worker.web_port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def without_ts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "ts"} for r in records]


def wait_for_scores(worker: Worker, deadline_s: float = 120.0) -> list[dict[str, Any]]:
    """Poll ``/teams`` until it shows the expected scores; returns the last answer."""
    end = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < end:
        assert worker.alive, worker.log_tail()
        try:
            status, _, body = get(worker, "/teams")
        except OSError:
            time.sleep(0.2)  # web server not up yet
            continue
        last = (status, body[:2000])
        if status == 200:
            records = orjson.loads(body)
            if without_ts(records) == EXPECTED:
                return records
        time.sleep(0.3)
    raise AssertionError(f"/teams never showed the expected scores; last answer {last}\n{worker.log_tail()}")


def start_scored(deployment: Deployment, token: str | None = TOKEN, workers: int = 1) -> tuple[list[Worker], int]:
    """Start ``workers`` workers (all in the group before any data), then the scenario."""
    if token is not None:
        deployment.env_extra["CREDENCE_WEB_TOKEN"] = token
    directory, log, boundary = build_log(int(time.time() * 1000))
    started = [deployment.start_worker(f"w{i + 1}") for i in range(workers)]
    if workers > 1:
        wait_for_group(started)
    deployment.produce(directory)  # ownership first: Kafka does not order across topics
    end = time.monotonic() + 90
    while accepted_directory_records(started) < len(directory):
        assert time.monotonic() < end, "the directory records were not processed"
        assert all(w.alive for w in started), "\n".join(w.log_tail() for w in started)
        time.sleep(0.1)
    deployment.produce(log)
    return started, boundary


def accepted_directory_records(workers: list[Worker]) -> float:
    try:
        return sum(w.metric_value("credence_input_events_total", topic="customer-directory", outcome="accepted")
                   for w in workers)
    except OSError:
        return 0  # a web server not up yet


def wait_for_group(workers: list[Worker], deadline_s: float = 120.0) -> str:
    """Every worker answers ``/teams`` (from the same table owner): the group has settled.

    Returns the owner's URL. Waiting before any data is produced keeps the rebalance
    away from stored table state.
    """
    end = time.monotonic() + deadline_s
    answers: dict[int, Any] = {}
    while True:
        assert all(w.alive for w in workers), "\n".join(w.log_tail() for w in workers)
        assert time.monotonic() < end, f"the workers never agreed on the team table's owner: {answers}"
        try:
            answers = {w.web_port: get(w, "/teams")[:2] for w in workers}
        except OSError:
            time.sleep(0.3)  # a web server not up yet
            continue
        served = {a[1].get("X-Credence-Served-By") for a in answers.values()}
        if all(a[0] == 200 for a in answers.values()) and len(served) == 1:
            return served.pop()
        time.sleep(0.3)


def local_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(CFG.time_zone)).date().isoformat()


# -- the JSON views, the CSV and routing ----------------------------------------------


def test_team_scores_and_traceability_csv(deployment: Deployment) -> None:
    before = int(time.time() * 1000)
    (worker,), boundary = start_scored(deployment)
    teams = wait_for_scores(worker)
    for record in teams:  # scored as of the wall clock
        assert before - 1000 <= parse_ts(record["ts"]) <= int(time.time() * 1000) + 1000

    status, headers, body = get(worker, "/teams/team-red.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert without_ts([orjson.loads(body)["credibility"]]) == [EXPECTED[1]]
    assert headers["X-Credence-Served-By"] == f"http://127.0.0.1:{worker.web_port}"
    status, _, body = get(worker, "/teams/no-such-team.json")
    assert status == 404 and orjson.loads(body)["error"] == "not_found"

    heatmap = orjson.loads(get(worker, "/heatmap.json")[2])
    assert heatmap["time_zone"] == "Asia/Shanghai"
    assert [(r["region"], [t["team_id"] for t in r["teams"]], [t["band"] for t in r["teams"]], r["red_teams"])
            for r in heatmap["regions"]] == [
        ("east", ["team-gold", "team-red"], ["yellow", "red"], ["team-red"]),
        ("west", ["team-west"], ["green"], []),
    ]
    assert b"203.0.113" not in orjson.dumps(heatmap)  # no IP address without the token

    # the traceability list holds IP addresses: bearer token only
    csv_path = "/teams/team-red/traceability.csv"
    status, headers, body = get(worker, csv_path)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert b"203.0.113" not in body
    status, _, body = get(worker, csv_path, token="wrong-token")
    assert status == 401 and b"203.0.113" not in body
    # without ?week: the week that ended at the last boundary; with it, the same week
    for path in (csv_path, f"{csv_path}?week={local_date(boundary)}"):
        status, headers, body = get(worker, path, token=TOKEN)
        assert status == 200, (path, body)
        assert headers["Content-Type"] == "text/csv; charset=utf-8"
        assert headers["X-Credence-Week-Start"] == format_ts(boundary - WEEK_MS)
        assert headers["X-Credence-Week-End"] == format_ts(boundary)
        lines = body.decode().splitlines()
        assert lines[0] == "ts,customer_id,ip,signal,points,delta_id,evidence_ids"
        rows = [line.split(",") for line in lines[1:]]
        # decision chain at boundary - 2 h (its legal login), urgency at boundary - 1 h
        assert [(r[0], r[1], r[2], r[3], r[4], sorted(r[6].split())) for r in rows] == [
            (format_ts(boundary - 2 * HOUR), "c1", RED_IP, "decision_chain", "12", ["c1-l0", "c1-l1", "c1-l2"]),
            (format_ts(boundary - HOUR), "c1", RUSH_IP, "urgency", "6", ["c1-r"]),
        ]
        assert all(len(r[5]) >= 16 for r in rows)  # delta ids
    # the week before holds nothing; a bad date is refused; an unknown team is 404
    status, _, body = get(worker, f"{csv_path}?week={local_date(boundary - WEEK_MS)}", token=TOKEN)
    assert status == 200 and body.decode().splitlines() == ["ts,customer_id,ip,signal,points,delta_id,evidence_ids"]
    assert get(worker, f"{csv_path}?week=27.11.2026", token=TOKEN)[0] == 400
    assert get(worker, "/teams/nobody/traceability.csv", token=TOKEN)[0] == 404


#: every view Faust 0.15.3 mounts (by default or by a setting): /router and /table (on
#: by default; /table/customer-signal-state/<customer>/ served raw state with evidence IPs),
#: / (production index or sensor stats), /assignment/, /graph/, /performance/
FAUST_PATHS = ["/", "/router/", "/router/topics", "/router/team-state/", "/router/customer-signal-state/c1/",
               "/table/", "/table/customer-signal-state/", "/table/customer-signal-state/c1/",
               "/table/team-state/", "/assignment/", "/graph/", "/performance/", "/stats/"]
#: team ids a client may send: long, control and invalid-UTF-8 bytes, slashes, markup
ODD_TEAM_IDS = ["x" * 4000, "%00", "%ff%fe", "a%2Fb", "..%2F..%2Fetc", "%E2%80%AE", "%3Cscript%3E", "%0d%0a=1"]


def test_only_credence_views_are_served(deployment: Deployment) -> None:
    (worker,), _ = start_scored(deployment)
    wait_for_scores(worker)
    for path in FAUST_PATHS:
        for token in (None, TOKEN):
            status, _, body = get(worker, path, token=token)
            assert status == 404, (path, status, body[:300])
            assert b"203.0.113" not in body and b"c1" not in body
    for path in ("/teams", "/teams/team-red", "/teams/team-red.json", "/heatmap", "/heatmap.json", "/metrics"):
        assert get(worker, path)[0] == 200, path
    assert get(worker, "/teams/team-red/traceability.csv", token=TOKEN)[0] == 200
    # odd team ids are an unknown team (or a too-long request line), never a server error
    for team_id in ODD_TEAM_IDS:
        for path, token in ((f"/teams/{team_id}", None), (f"/teams/{team_id}.json", None),
                            (f"/teams/{team_id}/traceability.csv", TOKEN)):
            status, _, body = get(worker, path, token=token)
            assert status == 404, (path[:80], status, body[:300])
    assert get(worker, "/teams/" + "x" * 20_000)[0] in {400, 414}  # longer than aiohttp's request line
    assert worker.alive


def test_a_request_flood_is_answered_or_turned_away(deployment: Deployment) -> None:
    """200 concurrent requests: each is answered from the shared snapshot (the same
    scores) or turned away with 503 and Retry-After (more than MAX_REQUESTS at once);
    bench/web_flood.py measures the event latency under such a flood."""
    (worker,), _ = start_scored(deployment)
    wait_for_scores(worker)

    async def flood() -> list[tuple[str, int, dict[str, str], bytes]]:
        async def one(session: aiohttp.ClientSession, path: str) -> tuple[str, int, dict[str, str], bytes]:
            async with session.get(f"http://127.0.0.1:{worker.web_port}{path}") as answer:
                return path, answer.status, dict(answer.headers), await answer.read()

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            return await asyncio.gather(*(one(session, p) for p in ["/teams", "/heatmap.json", "/heatmap"] * 67))

    answers = asyncio.run(flood())
    print(f"flood of {len(answers)}: {Counter((a[0], a[1]) for a in answers)}")
    assert {a[1] for a in answers} <= {200, 503}
    for path, status, headers, body in answers:
        if status == 503:
            assert headers["Retry-After"] and orjson.loads(body)["error"] == "unavailable"
        elif path == "/teams":
            assert without_ts(orjson.loads(body)) == EXPECTED
        elif path == "/heatmap.json":
            assert [r["red_teams"] for r in orjson.loads(body)["regions"]] == [["team-red"], []]
        else:
            assert b'data-team="team-red" data-band="red"' in body
    assert any(a[1] == 200 for a in answers)
    assert get(worker, "/teams")[0] == 200 and worker.alive


def test_any_worker_answers_from_the_worker_holding_the_team_table(deployment: Deployment) -> None:
    workers, boundary = start_scored(deployment, workers=2)
    urls = {f"http://127.0.0.1:{w.web_port}": w for w in workers}
    for worker in workers:
        wait_for_scores(worker)
    owners = {get(w, "/teams")[1]["X-Credence-Served-By"] for w in workers}
    assert len(owners) == 1 and owners <= set(urls)  # one worker read its table ...
    owner = urls[owners.pop()]
    other = next(w for w in workers if w is not owner)  # ... the other forwarded to it
    assert other.alive and owner.alive

    # forwarded answers keep status, body and headers
    status, headers, body = get(other, "/teams/team-west.json")
    assert status == 200 and without_ts([orjson.loads(body)["credibility"]]) == [EXPECTED[2]]
    assert get(other, "/teams/no-such-team")[0] == 404
    status, headers, body = get(other, "/teams/team-west")
    assert status == 200 and headers["Content-Security-Policy"].startswith("default-src 'none'") and b"89.23" in body
    status, headers, body = get(other, "/teams/team-red/traceability.csv", token=TOKEN)
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == f'attachment; filename="traceability-team-red-{local_date(boundary)}.csv"'
    assert headers["X-Credence-Served-By"] == f"http://127.0.0.1:{owner.web_port}"
    assert len(body.decode().splitlines()) == 3
    status, headers, _ = get(other, "/teams/team-red/traceability.csv")
    assert status == 401 and "X-Credence-Served-By" not in headers  # refused before forwarding
    status, headers, body = get(other, "/heatmap")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8" and b"team-red" in body


# -- the heat map page in headless Chromium -------------------------------------------


def require_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    pytest.fail("chromium is not installed: `make test-deps` installs it")


def run_chromium(binary: str, profile: Path, *args: str, timeout_s: float = 90.0) -> bytes:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


class Cells(html.parser.HTMLParser):
    """Region rows and team cells of the heat map table, as the browser rendered them."""

    def __init__(self) -> None:
        super().__init__()
        self.region: str | None = None
        self.cells: list[dict[str, Any]] = []
        self.legend: list[str] = []
        self._cell: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and a.get("data-region"):
            self.region = a["data-region"]
        elif tag == "li" and "team" in classes:
            self._cell = {"region": self.region, "team": a.get("data-team"), "classes": classes, "text": ""}
            self.cells.append(self._cell)
        elif tag == "span" and "swatch" in classes:
            self.legend += [c for c in classes if c.startswith("band-")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def test_heatmap_page_renders_in_headless_chromium(deployment: Deployment, tmp_path: Path) -> None:
    (worker,), _ = start_scored(deployment, token=None)
    wait_for_scores(worker)
    # without CREDENCE_WEB_TOKEN the traceability lists are not served at all
    status, _, body = get(worker, "/teams/team-red/traceability.csv", token=TOKEN)
    assert status == 403 and "CREDENCE_WEB_TOKEN" in orjson.loads(body)["detail"]

    binary = require_chromium()
    url = f"http://127.0.0.1:{worker.web_port}/heatmap"
    status, headers, _ = get(worker, "/heatmap")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url).decode()
    cells = Cells()
    cells.feed(dom)
    assert [(c["region"], c["team"], [k for k in c["classes"] if k.startswith("band-")]) for c in cells.cells] == [
        ("east", "team-gold", ["band-yellow"]),
        ("east", "team-red", ["band-red"]),
        ("west", "team-west", ["band-green"]),
    ]
    text = {c["team"]: " ".join(c["text"].split()) for c in cells.cells}
    assert text["team-red"].startswith("team-red 49.23 Red")
    assert text["team-gold"].startswith("team-gold 74.52 Yellow")
    assert text["team-west"].startswith("team-west 89.23 Green")
    assert text["team-red"] == "team-red 49.23 Red Actions 25 Signals 69.23 Fulfilment 60"
    assert text["team-west"].endswith("Fulfilment \u2014")  # a component without data
    assert cells.legend == ["band-red", "band-yellow", "band-green"]
    assert "Asia/Shanghai" in dom and "203.0.113" not in dom

    shot = tmp_path / "heatmap.png"
    run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,800", url)
    print(f"heat map screenshot: {shot}")
    assert shot.exists() and shot.stat().st_size > 10_000
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 800)
    counts = Counter(pixels)
    # the band colours of streams/web/views.py fill whole cells (and the legend swatches)
    for name, rgb in (("red", (0xB3, 0x26, 0x1E)), ("yellow", (0xF2, 0xC9, 0x4C)), ("green", (0x1E, 0x7B, 0x34))):
        assert counts[rgb] > 5_000, f"too few {name} pixels in {shot}: {counts[rgb]}"


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced RGB(A) PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels += zip(line[0::bpp], line[1::bpp], line[2::bpp], strict=False)
        previous = line
    return width, height, pixels
