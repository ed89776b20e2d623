"""A Streamlit client without a browser: it speaks the server's own websocket protocol.

Used by bench_class.py to simulate a class: dozens of these fit on a machine where dozens of
Chromiums do not. What a browser tab does, and what this does the same way (Streamlit 1.67's
server, streamlit/web/server/starlette/starlette_websocket.py and streamlit/runtime/app_session.py):

1. Open `ws://HOST:PORT/_stcore/stream` with the subprotocol header `streamlit` (its second and
   third entries would carry an XSRF token and a session id to resume; a fresh tab sends neither).
   The server accepts, creates an AppSession and sends nothing until asked.
2. Ask for a script run: a `BackMsg` whose `rerun_script` is a `ClientState` (query_string,
   page_script_hash or page_name for st.navigation apps, widget_states, context_info,
   fragment_id for a fragment's run, is_auto_rerun for run_every).
3. Read `ForwardMsg`s: `new_session` opens each run (metadata.run: its script_run_id and, for a
   fragment run, its fragment ids), `navigation` lists the pages and their hashes, `delta`s
   carry the elements (widgets with their ids, defaults and options; `exception` elements),
   `page_info_changed` the query string the app set, `auto_rerun` / `stop_auto_rerun` a
   fragment's run_every, and `script_finished` (tagged with the run) closes the run;
   FINISHED_EARLY_FOR_RERUN means an st.rerun() or st.switch_page() run follows at once.
   Streamlit sometimes never sends a run's script_finished (a fragment's rerun arriving as the
   run's ScriptRunner ends: a new runner takes over and the old one's last events are dropped);
   a run whose next run starts first counts as finished at its last message (Run.lost_finish).
4. Like the front end, a page change sends only the frame's widget states (the sidebar's) and
   only the query parameters bound to widgets; other runs send every widget on screen and the
   query string the app last set; a whole-app run (or a page change) stops run_every timers.

Widget values go back as the front end sends them: radio/selectbox as the formatted option
(string_value), slider as doubles, select_slider as formatted options, number_input as
int_value or double_value, checkbox/toggle as bool_value, multiselect and pills/segmented
control as formatted options, a button click as trigger_value (one run only). Values the app
sets from session_state (set_value) replace the client's own, as in the browser. Widgets of
other types (text inputs, uploaders, custom components) are left out of the states: the
server then keeps their previous values, which is what it does for unchanged widgets anyway.

The ForwardMsg cache, as a browser keeps it: a message the server marks cacheable (a large element,
such as a component's data) is kept by its hash, every rerun reports the hashes kept, and the server
then sends a `ref_hash` in its place, which this client resolves from what it kept.

Not done: cookies set by page scripts (each
session is a browser seen for the first time: a new identity cookie each), and the static files
a browser loads once. Images (`/media/...`) can be fetched over HTTP (`fetch_media`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

STREAM_PATH = "/_stcore/stream"
CHANGEABLE = ("radio", "selectbox", "slider", "select_slider", "number_input", "checkbox", "multiselect",
              "button_group")
MAX_MEDIA_PER_RUN = 8


@dataclass
class Widget:
    """One widget on the page as the client knows it, with the value the client would send."""

    id: str
    kind: str  # radio, selectbox, slider, select_slider, number_input, checkbox, multiselect, button_group, button
    label: str
    key: str | None
    value: Any  # in the protocol's form: str, list[float], list[str], int/float, bool, or None
    options: list[str] = field(default_factory=list)
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    is_int: bool = False
    disabled: bool = False
    fragment_id: str = ""
    sidebar: bool = False
    script_hash: str = ""  # the script that drew it: app.py's frame (the sidebar) or the page
    param_key: str = ""  # bound to this query parameter (bind="query-params")

    def state(self) -> WidgetState | None:
        if self.kind == "button" or self.value is None:
            return None
        ws = WidgetState(id=self.id)
        if self.kind in ("radio", "selectbox"):
            ws.string_value = self.value
        elif self.kind == "slider":
            ws.double_array_value.data[:] = [float(v) for v in self.value]
        elif self.kind in ("select_slider", "multiselect", "button_group"):
            ws.string_array_value.data[:] = list(self.value)
        elif self.kind == "number_input":
            if self.is_int:
                ws.int_value = int(self.value)
            else:
                ws.double_value = float(self.value)
        elif self.kind == "checkbox":
            ws.bool_value = bool(self.value)
        else:
            return None
        return ws

    def random_value(self, rng: random.Random) -> Any:
        """Another value, as a student would pick it; None if there is no other value."""
        if self.kind in ("radio", "selectbox", "select_slider"):
            others = [o for o in self.options if [o] != self.value and o != self.value]
            if not others:
                return None
            pick = rng.choice(others)
            if self.kind != "select_slider":
                return pick
            if len(self.value or []) == 2:  # a range: move one end
                a, b = sorted([self.options.index(pick), self.options.index(self.value[1 - rng.randint(0, 1)])])
                return [self.options[a], self.options[b]]
            return [pick]
        if self.kind == "checkbox":
            return not self.value
        if self.kind in ("multiselect", "button_group"):
            if not self.options:
                return None
            cur = list(self.value or [])
            opt = rng.choice(self.options)
            if opt in cur and len(cur) > 1:
                cur.remove(opt)
            elif opt not in cur:
                cur = cur + [opt] if self.kind == "multiselect" else [opt]
            else:
                return None
            return cur
        if self.kind == "slider":
            lo, hi, step = self.lo or 0.0, self.hi or 1.0, self.step or 1.0
            n = int(round((hi - lo) / step))
            if n < 1:
                return None
            vals = sorted(lo + step * rng.randint(0, n) for _ in range(len(self.value or [0])))
            vals = [round(v, 10) for v in vals]
            return vals if vals != list(self.value or []) else None
        if self.kind == "number_input":
            step, lo, hi = self.step or 1.0, self.lo, self.hi
            if lo is not None and hi is not None and (hi - lo) / step <= 10_000:
                v = lo + step * rng.randint(0, int((hi - lo) / step))  # a small range (a digit's index): anywhere
            else:  # a seed, or an empty input: a few steps from where it is
                if self.value is None:  # typed into an empty input: a small value from its minimum up
                    v = (lo if lo is not None else 0) + step * rng.choice([1, 2, 3, 5])
                else:
                    v = self.value + step * rng.choice([-3, -2, -1, 1, 2, 3, 5])
            v = min(hi if hi is not None else v, max(lo if lo is not None else v, v))
            v = int(round(v)) if self.is_int else round(v, 10)
            return v if v != self.value else None
        return None


def widget_from_element(el, delta, path: list[int], old: Widget | None, script_hash: str = "") -> Widget | None:
    """The Widget of an element proto, or None for elements that are not (supported) widgets."""
    kind = el.WhichOneof("type")
    if kind not in (*CHANGEABLE, "button"):
        return None
    p = getattr(el, kind)
    if p.form_id:  # inside st.form: the value counts only on submit; leave forms alone
        return None
    key = p.id.split("-", 2)[2] if p.id.count("-") >= 2 else None
    w = Widget(id=p.id, kind=kind, label=getattr(p, "label", ""), key=None if key == "None" else key,
               value=None, disabled=p.disabled, fragment_id=delta.fragment_id, sidebar=bool(path) and path[0] == 1,
               script_hash=script_hash, param_key=getattr(p, "query_param_key", "") or "")
    set_value = getattr(p, "set_value", False)
    if kind in ("radio", "selectbox"):
        w.options = list(p.options)
        if set_value and p.HasField("raw_value"):
            w.value = p.raw_value
        elif p.HasField("default") and 0 <= p.default < len(w.options):
            w.value = w.options[p.default]
    elif kind == "slider":
        if p.type == Slider.SELECT_SLIDER:
            w.kind, w.options = "select_slider", list(p.options)
            if set_value and p.raw_value:
                w.value = list(p.raw_value)
            else:
                w.value = [w.options[int(i)] for i in p.default if 0 <= int(i) < len(w.options)]
        else:
            w.lo, w.hi, w.step = p.min, p.max, p.step
            w.value = list(p.value if set_value and p.value else p.default)
    elif kind == "number_input":
        w.is_int = p.data_type == NumberInput.INT
        w.lo = p.min if p.has_min else None
        w.hi = p.max if p.has_max else None
        w.step = p.step or (1 if w.is_int else 0.01)
        if set_value:
            w.value = p.value if p.HasField("value") else None
        elif p.HasField("default"):
            w.value = p.default
        if w.value is not None and w.is_int:
            w.value = int(w.value)
    elif kind == "checkbox":
        w.value = p.value if set_value else p.default
    elif kind == "multiselect":
        w.options = list(p.options)
        w.value = list(p.raw_values) if set_value else [w.options[i] for i in p.default if 0 <= i < len(w.options)]
    elif kind == "button_group":
        w.options = [o.content for o in p.options]
        w.value = list(p.raw_values) if set_value else [w.options[i] for i in p.default if 0 <= i < len(w.options)]
    if old is not None and old.kind == w.kind and not set_value and old.value is not None:
        w.value = old.value  # the browser keeps what the user chose while the widget stays the same
    return w


@dataclass
class Run:
    """One script run asked for by this client, from sending the BackMsg to its script_finished."""

    t0: float
    fragment_id: str = ""
    run_id: str | None = None  # the server's script_run_id, once its new_session arrived
    follow: bool = False  # finished early for st.rerun(): the next run is still this one
    seconds: float | None = None
    status: str = "pending"  # ok, error (exception / compile error), timeout, closed
    exceptions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # st.error alerts (the app's own messages)
    media: list[str] = field(default_factory=list)
    messages: int = 0  # ForwardMsgs received while it was pending
    last: float = 0.0  # when the last message of this run arrived
    lost_finish: bool = False  # the server never sent its script_finished (see Session._handle)
    trace: deque = field(default_factory=lambda: deque(maxlen=10))  # the last of them: (seconds, what)
    done: asyncio.Future | None = None


class Session:
    """One browser tab's worth of Streamlit session, over one websocket."""

    def __init__(self, host: str, port: int, timezone: str = "Europe/Berlin"):
        self.host, self.port, self.timezone = host, port, timezone
        self.ws = None
        self.cached: dict[str, ForwardMsg] = {}  # the ForwardMsg cache: hash -> a cacheable message received
        self.pages: dict[str, Any] = {}  # title -> AppPage (page_script_hash, url_pathname, ...)
        self.page_hash = ""  # the page of the last whole-app run
        self.main_hash = ""  # app.py's own script hash (its frame: navigation, sidebar)
        self.query_string = ""
        self.widgets: dict[str, Widget] = {}  # the widgets on screen after the last run
        self._building: dict[str, Widget] | None = None  # widgets of the whole-app run in progress
        self._building_run = ""
        self._pending: Run | None = None
        self._auto: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)
        self._frag_started: dict[str, float] = {}
        self.fragment_runs: list[float] = []  # seconds of fragment runs this client did not ask for
        self.auto_reruns_sent = 0
        self.exceptions: list[tuple[str, str]] = []  # (page title, message) in runs not asked for (run_every)
        self.closed: str | None = None  # why the connection ended, if it did
        self._reader: asyncio.Task | None = None

    # ---------------------------------------------------------------- connection
    async def connect(self, timeout: float = 10.0) -> None:
        self.ws = await asyncio.wait_for(connect(
            f"ws://{self.host}:{self.port}{STREAM_PATH}", subprotocols=["streamlit"], max_size=None,
            ping_interval=None, open_timeout=timeout, user_agent_header="latent-lab bench_class"), timeout)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        for _, task in self._auto.values():
            task.cancel()
        self._auto.clear()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:
                pass
        if self._reader is not None:
            self._reader.cancel()

    def page_title(self, page_hash: str | None = None) -> str:
        h = page_hash if page_hash is not None else self.page_hash
        return next((t for t, p in self.pages.items() if p.page_script_hash == h), h[:8] or "?")

    # ---------------------------------------------------------------- asking for runs
    def _client_state(self, msg: BackMsg, page_hash: str | None, fragment_id: str, trigger: Widget | None,
                      auto: bool) -> None:
        cs = msg.rerun_script
        cs.query_string = self.query_string
        if page_hash is not None and page_hash != self.page_hash:
            # The front end's page change keeps only the parameters bound to widgets (and embed options).
            bound = {w.param_key for w in self.widgets.values() if w.param_key}
            cs.query_string = self.query_string = urlencode(
                [(k, v) for k, v in parse_qsl(self.query_string, keep_blank_values=True) if k in bound])
        cs.page_script_hash = page_hash if page_hash is not None else self.page_hash
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        cs.cached_message_hashes.extend(self.cached)
        page = next((p for p in self.pages.values() if p.page_script_hash == cs.page_script_hash), None)
        cs.context_info.timezone = self.timezone
        cs.context_info.locale = "en-US"
        cs.context_info.url = f"http://{self.host}:{self.port}/{page.url_pathname if page else ''}"
        # A page change sends only the states of the frame's widgets (app.py's: the sidebar), as the
        # front end's onPageChange does; any other run, those of every widget on screen.
        same_page = page_hash is None or page_hash == self.page_hash
        for w in self.widgets.values():
            if (same_page or w.script_hash == self.main_hash) and (ws := w.state()) is not None:
                cs.widget_states.widgets.append(ws)
        if trigger is not None:
            cs.widget_states.widgets.append(WidgetState(id=trigger.id, trigger_value=True))

    async def rerun(self, page_hash: str | None = None, *, page_name: str | None = None,
                    trigger: Widget | None = None, fragment_id: str = "", timeout: float = 30.0) -> Run:
        """Ask for a run (a page, a widget change already made with `change`, or a button click)
        and wait for its script_finished. Never raises: the Run says how it went."""
        run = Run(t0=time.perf_counter(), fragment_id=fragment_id)
        if self.closed:
            run.status = "closed"
            run.errors.append(self.closed)
            return run
        if page_hash is not None and page_hash != self.page_hash:
            self._stop_auto(list(self._auto))  # the front end's onPageChange drops run_every timers
        msg = BackMsg()
        self._client_state(msg, page_hash, fragment_id, trigger, auto=False)
        if page_name is not None:
            msg.rerun_script.page_name = page_name
        run.done = asyncio.get_running_loop().create_future()
        self._pending = run
        run.t0 = time.perf_counter()
        try:
            await self.ws.send(msg.SerializeToString())
            await asyncio.wait_for(asyncio.shield(run.done), timeout)
        except asyncio.TimeoutError:
            run.status, run.seconds = "timeout", time.perf_counter() - run.t0
        except Exception as e:  # the connection went away
            run.status, run.seconds = "closed", time.perf_counter() - run.t0
            run.errors.append(f"{type(e).__name__}: {e}")
        if self._pending is run:
            self._pending = None
        return run

    def change(self, w: Widget, value: Any) -> None:
        """What the user just did to a widget (send it with rerun(fragment_id=w.fragment_id))."""
        w.value = value

    def find(self, key: str | None = None, label: str | None = None) -> Widget | None:
        for w in self.widgets.values():
            if (key is not None and w.key == key) or (label is not None and w.label == label):
                return w
        return None

    # ---------------------------------------------------------------- run_every fragments
    def _start_auto(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self._auto and self._auto[fragment_id][0] == interval:
            return
        self._stop_auto([fragment_id])
        self._auto[fragment_id] = (interval, asyncio.create_task(self._auto_loop(fragment_id, interval)))

    def _stop_auto(self, fragment_ids) -> None:
        for fid in list(fragment_ids):
            if fid in self._auto:
                self._auto.pop(fid)[1].cancel()

    async def _auto_loop(self, fragment_id: str, interval: float) -> None:
        while not self.closed:  # as the front end's setInterval: regardless of runs in progress
            await asyncio.sleep(max(interval, 0.05))
            msg = BackMsg()
            self._client_state(msg, None, fragment_id, None, auto=True)
            try:
                await self.ws.send(msg.SerializeToString())
            except Exception:
                return
            self.auto_reruns_sent += 1

    # ---------------------------------------------------------------- reading
    async def _read(self) -> None:
        try:
            async for data in self.ws:
                if isinstance(data, (bytes, bytearray)):
                    self._handle(bytes(data))
            self.closed = "the server closed the connection"
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.closed = f"{type(e).__name__}: {e}"[:200]
        finally:
            self.closed = self.closed or "closed"
            self._stop_auto(list(self._auto))
            run = self._pending
            if run is not None and run.done is not None and not run.done.done():
                run.status, run.seconds = "closed", time.perf_counter() - run.t0
                run.errors.append(self.closed)
                run.done.set_result(None)

    def _handle(self, data: bytes) -> None:
        now = time.perf_counter()
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":  # a message this client has: the server sent only its hash
            if msg.ref_hash not in self.cached:
                self.exceptions.append((self.page_title(), "the server referred to a message never received"))
                return
            full = ForwardMsg()
            full.CopyFrom(self.cached[msg.ref_hash])
            full.metadata.CopyFrom(msg.metadata)  # where it goes this time
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self.cached[msg.hash] = msg
        run = self._pending
        if run is not None and run.done is not None and not run.done.done():
            run.messages += 1
            what = kind or "?"
            if kind == "delta":
                what = f"delta {msg.delta.WhichOneof('type')} {msg.delta.new_element.WhichOneof('type') or ''} " \
                       f"{list(msg.metadata.delta_path)}"
            elif kind in ("new_session", "script_finished"):
                what += f" run {msg.metadata.run.script_run_id[:8]}{' fragment' if msg.metadata.run.fragment_ids else ''}"
                if kind == "script_finished":
                    what += f" {ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)}"
            run.trace.append((round(now - run.t0, 2), what))
            if run.run_id is not None and kind != "new_session":
                run.last = now
        if kind == "delta":
            self._on_delta(msg, run)
        elif kind == "new_session":
            rid, frags = msg.metadata.run.script_run_id, list(msg.metadata.run.fragment_ids)
            if run is not None and run.run_id and rid != run.run_id and not run.done.done():
                # Another run started before ours said it finished: Streamlit dropped our script_finished
                # (a run_every fragment's rerun reached the server in the moment our run's runner was
                # ending, so a new runner took over and the old one's events were ignored). Our run
                # ended with its last message; the browser would show the page, with its stale
                # elements left in place.
                run.seconds, run.status = run.last - run.t0, "error" if run.exceptions else "ok"
                run.lost_finish = True
                run.done.set_result(None)
            if self._building is not None and frags:  # the whole-app run in progress never finished
                self.widgets, self._building, self._building_run = self._building, None, ""
            if not frags:  # a whole-app run: the front end drops run_every timers and rebuilds the page
                self._stop_auto(list(self._auto))
                self.page_hash = msg.new_session.page_script_hash
                self.main_hash = msg.new_session.main_script_hash
                self._building, self._building_run = {}, rid
            else:
                self._frag_started[rid] = now
            if run is not None and run.run_id is None and (
                    run.follow or (run.fragment_id in frags if run.fragment_id else not frags)):
                run.run_id, run.follow = rid, False
            if run is not None and run.run_id == rid:
                run.last = now
        elif kind == "script_finished":
            status, rid = msg.script_finished, msg.metadata.run.script_run_id
            if rid and rid == self._building_run and status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.widgets, self._building, self._building_run = self._building or {}, None, ""
            if rid in self._frag_started:
                started = self._frag_started.pop(rid)
                if run is None or rid != run.run_id:
                    self.fragment_runs.append(now - started)
            if run is None or run.done is None or run.done.done():
                return
            if rid and rid == run.run_id:
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    run.run_id, run.follow = None, True
                    return
                run.seconds = now - run.t0
                run.status = "error" if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR or run.exceptions else "ok"
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    run.exceptions.append("script finished with a compile error")
                run.done.set_result(None)
            elif not rid and run.run_id is None:  # the server's handler of a bad BackMsg: no run identity
                run.seconds, run.status = now - run.t0, "error"
                run.exceptions.append("the server could not handle the BackMsg")
                run.done.set_result(None)
        elif kind == "navigation":
            self.pages = {p.page_name: p for p in msg.navigation.app_pages}
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            if msg.auto_rerun.fragment_id:
                self._start_auto(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_auto(msg.stop_auto_rerun.fragment_ids)
        elif kind == "page_not_found":
            text = f"page not found: {msg.page_not_found.page_name!r}"
            if run is not None:
                run.exceptions.append(text)
            else:
                self.exceptions.append((self.page_title(), text))

    def _on_delta(self, msg: ForwardMsg, run: Run | None) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "exception":
            e = el.exception
            text = f"{e.type}: {e.message}".strip(": ")[:300] + (" (warning)" if e.is_warning else "")
            if run is not None:
                run.exceptions.append(text)
            else:
                self.exceptions.append((self.page_title(), text))
        elif kind == "alert" and el.alert.format == Alert.ERROR:
            if run is not None:
                run.errors.append(el.alert.body[:200])
        elif kind == "imgs":
            if run is not None and len(run.media) < MAX_MEDIA_PER_RUN:
                run.media.extend(i.url for i in el.imgs.imgs if i.url.startswith("/media/"))
        else:
            # A whole-app run rebuilds the page (its fragments' first runs included); a fragment's own
            # run updates the widgets in place.
            target = self._building if self._building is not None else self.widgets
            old = self.widgets.get(getattr(getattr(el, kind, None), "id", "") or "")
            w = widget_from_element(el, delta, list(msg.metadata.delta_path), old, msg.metadata.active_script_hash)
            if w is not None:
                target[w.id] = w

    # ---------------------------------------------------------------- media over HTTP
    async def fetch_media(self, urls: list[str], timeout: float = 10.0) -> tuple[int, int, int]:
        """GET each /media/ URL as a browser's <img> would. -> (fetched, bytes, failed)"""
        results = await asyncio.gather(*(self._get(u, timeout) for u in urls[:MAX_MEDIA_PER_RUN]),
                                       return_exceptions=True)
        ok = [r for r in results if isinstance(r, int)]
        return len(ok), sum(ok), len(results) - len(ok)

    async def _get(self, path: str, timeout: float) -> int:
        async def go() -> int:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                             "Connection: close\r\n\r\n".encode())
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
            head, _, body = data.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
            if status != 200:
                raise OSError(f"HTTP {status} for {path}")
            return len(body)
        return await asyncio.wait_for(go(), timeout)
