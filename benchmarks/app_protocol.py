"""A Bokeh protocol client that opens a dashboard session as a browser does, without rendering it.

The concurrency levels drive the server with these clients, not browsers: N headless browsers on a
2-core machine measured the browsers (at 50, every selection timed out while the server used 29%
of a core). Each client requests the page as a browser does, then pulls the session's document
through the websocket, sets the gallery's ``selected`` as a click does, and waits for the server's
patches to show the digit as the page would (the same check as in the browser); a session has
started when its document holds the gallery and the inspector. What they measure is the server's
answer through the websocket, without the browser's rendering.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from bokeh.client.websocket import WebSocketClientConnectionWrapper
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, DocumentPatchedEvent, MessageSentEvent
from bokeh.events import DocumentReady
from bokeh.models import GlyphRenderer, Plot
from bokeh.protocol import Protocol
from bokeh.protocol.message import Message
from bokeh.protocol.receiver import Receiver
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from benchmarks.app_page import INSPECTOR_TITLE, SELECTION_TIMEOUT_S, START_TIMEOUT_S, VOTES_TITLE

__all__ = ["ProtocolSession"]

MAX_MESSAGE_BYTES = 20 * 2**20  # bokeh.client's limit on one websocket message


class ProtocolSession:
    """One session of the dashboard, opened as a browser opens it but not rendered.

    It requests the page (the server builds the session's document then) and speaks Bokeh's
    websocket protocol (``bokeh.protocol``) as the page's BokehJS does: pull the document, announce
    it ready (Panel runs the app's on-load callbacks then), send the client's changes and apply the
    server's patches. ``bokeh.client.ClientSession`` speaks the same protocol, but each of its calls
    runs an event loop of its own until a reply and applies the server's patches only meanwhile, so
    50 of them at once would take 50 threads polling the server with round trips; these share one
    asyncio loop.
    """

    def __init__(self, url: str, query: str, decoder: ThreadPoolExecutor) -> None:
        self.url, self.query = url, query
        self.document: Document | None = None
        self.server_errors: list[str] = []  # texts of the server's ERROR replies
        self._decoder = decoder
        self._protocol = Protocol()
        self._receiver = Receiver(self._protocol)
        self._socket: WebSocketClientConnectionWrapper | None = None
        self._reader: asyncio.Task | None = None
        self._acked = False
        self._reply: tuple[float, Message] | None = None  # arrival time, PULL-DOC-REPLY
        self._pending: list[tuple[float, Message]] = []  # PATCH-DOCs not applied yet, with their arrival times
        self._applied_at = 0.0  # arrival time of the last message applied to the document
        self._arrived = asyncio.Event()
        self._closed: str | None = None  # why the websocket is closed
        self._outbox: list[DocumentPatchedEvent] = []

    async def open(self) -> float:
        """Open the session; seconds from the page request until its document holds the inspector."""
        requested = time.perf_counter()
        http = AsyncHTTPClient(force_instance=True)  # the shared one queues requests beyond 10
        try:
            page = await http.fetch(f"{self.url}?{self.query}", connect_timeout=START_TIMEOUT_S,
                                    request_timeout=START_TIMEOUT_S)
        finally:
            http.close()
        token = re.search(r'"token":\s*"([^"]+)"', page.body.decode())
        if token is None:
            raise ConnectionError("the page holds no Bokeh session token")
        # as the page's script: the app's ws endpoint with the page's query, the token as subprotocol
        request = HTTPRequest(f"ws{self.url.removeprefix('http')}/ws?{self.query}",
                              connect_timeout=START_TIMEOUT_S, request_timeout=START_TIMEOUT_S)
        socket = await websocket_connect(request, subprotocols=["bokeh", token.group(1)],
                                         max_message_size=MAX_MESSAGE_BYTES)
        self._socket = WebSocketClientConnectionWrapper(socket)
        self._reader = asyncio.create_task(self._read())
        await self._until(lambda: self._acked)
        await self._protocol.create("PULL-DOC-REQ").send(self._socket)
        await self._until(lambda: self._reply is not None)
        arrived, reply = self._reply
        # decoding a document costs the client a few tenths of a second of CPU: in a thread, so that
        # the loop keeps timing the other sessions' messages as they arrive
        document = Document()
        await asyncio.get_running_loop().run_in_executor(self._decoder, reply.push_to_document, document)
        document.on_change(self._changed)
        self.document, self._applied_at = document, arrived
        held_when_pulled = self._holds_inspector()  # as pulled, before the patches that arrived meanwhile
        self._apply_pending()
        self._outbox.append(MessageSentEvent(document, "bokeh_event", DocumentReady()))
        await self._flush()
        return (arrived if held_when_pulled else await self._until(self._holds_inspector)) - requested

    def gallery_digits(self) -> list[int]:
        """The digits of the gallery's thumbnails, in order."""
        return [item["digit"] for item in self._gallery().items]

    async def select(self, digit: int, votes: list[int]) -> float:
        """Set the gallery's ``selected``, as a click on a thumbnail does; seconds until the inspector shows ``digit``."""
        start = time.perf_counter()
        self._gallery().selected = digit
        await self._flush()
        named = re.compile(f"Test digit {digit}(?![0-9])")

        def shown() -> bool:  # what app_selection.WATCH_SELECTION_JS checks in the page
            return (any(named.search(m.text or "") for m in self._titles())
                    and any(np.asarray(draws).tolist() == votes for draws in self._votes()))

        async with asyncio.timeout(SELECTION_TIMEOUT_S):
            return await self._until(shown) - start

    async def close(self) -> None:
        """Close the websocket and stop reading the server's messages."""
        if self._socket is not None:
            self._socket.close(1000, "benchmark done")
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    def _gallery(self):
        # the DigitGallery's Bokeh data model: the one with its two properties
        return next((m for m in self.document.models if {"items", "selected"} <= m.properties()), None)

    def _titles(self) -> list:
        # properties() first: a missing attribute costs a Bokeh model a fuzzy search for its error message
        return [m for m in self.document.models if "css_classes" in m.properties() and INSPECTOR_TITLE in m.css_classes]

    def _votes(self) -> list:
        return [r.data_source.data["draws"] for m in self.document.models
                if isinstance(m, Plot) and m.title is not None and VOTES_TITLE in (m.title.text or "")
                for r in m.renderers if isinstance(r, GlyphRenderer) and "draws" in r.data_source.data]

    def _holds_inspector(self) -> bool:
        gallery = self._gallery()
        return gallery is not None and len(gallery.items) > 1 and bool(self._titles()) and bool(self._votes())

    async def _receive(self) -> Message | None:
        while (fragment := await self._socket.read_message()) is not None:
            message = await self._receiver.consume(fragment)
            if message is not None:
                return message
        return None

    async def _read(self) -> None:
        """Take the server's messages as they arrive; patches are applied once the document is decoded."""
        try:
            while (message := await self._receive()) is not None:
                arrived = time.perf_counter()
                match message.msgtype:
                    case "ACK":
                        self._acked = True
                    case "PULL-DOC-REPLY":
                        self._reply = (arrived, message)
                    case "PATCH-DOC":
                        self._pending.append((arrived, message))
                    case "ERROR":
                        self.server_errors.append(str(message.content.get("text", message.content)))
                self._apply_pending()
                self._arrived.set()
            self._closed = "the server closed the websocket"
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits for the server, as why it stopped
            self._closed = f"reading the server's messages failed: {type(exc).__name__}: {exc}"
        finally:
            self._closed = self._closed or "closed by the client"
            self._arrived.set()

    def _apply_pending(self) -> None:
        if self.document is None:
            return
        for arrived, message in self._pending:
            message.apply_to_document(self.document, self)
            self._applied_at = arrived
        self._pending.clear()

    async def _until(self, condition: Callable[[], bool]) -> float:
        """Wait for the server's messages until ``condition()``; the arrival time of the last one applied."""
        while not condition():
            if self._closed:
                raise ConnectionError(self._closed)
            self._arrived.clear()
            await self._arrived.wait()
        return self._applied_at

    def _changed(self, event: DocumentChangedEvent) -> None:
        # the client's own changes go to the server; the server's patches (applied with setter self) do not
        if isinstance(event, DocumentPatchedEvent) and event.setter is not self:
            self._outbox.append(event)

    async def _flush(self) -> None:
        events, self._outbox = self._outbox, []
        if events:
            await self._protocol.create("PATCH-DOC", events).send(self._socket)
