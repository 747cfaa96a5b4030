"""Streaming events to a client: `events -f`, and the progress of a long command."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wharf.control.api import DaemonApi, Reply
from wharf.observability.events import Event, Subscription

T = TypeVar("T")
Message = Callable[[Event], dict[str, Any]]


def event_message(event: Event, as_json: bool, stream: str = "event") -> dict[str, Any]:
    """A streamed message carrying one event: the event, and its line as the CLI prints it."""
    data = event.to_json()
    line = json.dumps(data, separators=(",", ":")) if as_json else event.line()
    return {"stream": stream, "event": data, "data": line + "\n"}


async def follow_events(subscription: Subscription, reply: Reply, message: Message) -> None:
    """Send every new event until the client goes away."""
    closed = asyncio.ensure_future(reply.closed())
    try:
        await _pump(subscription, reply, message, closed)
    finally:
        closed.cancel()


async def with_progress(api: DaemonApi, reply: Reply, args: dict[str, Any], app: str | None,
                        work: Awaitable[T]) -> T:
    """Await `work`; with `progress` in `args`, send the events of `app` (None: of every app)
    as they happen, as "progress" messages, the last of them before the result."""
    if not args.get("progress"):
        return await work
    subscription = api.events.subscribe()

    def message(event: Event) -> dict[str, Any]:
        return event_message(event, bool(args.get("json")), "progress")

    task = asyncio.ensure_future(work)
    try:
        await _pump(subscription, reply, message, task,
                    lambda e: app is None or e.app in (app, None))
    finally:
        if not task.done():  # the handler itself was cancelled
            task.cancel()
    return task.result()


async def _pump(subscription: Subscription, reply: Reply, message: Message,
                ending: asyncio.Future[Any],
                wanted: Callable[[Event], bool] = lambda e: True) -> None:
    """Send the subscription's events until `ending` is done, then the ones queued by then;
    unsubscribe."""
    reported = 0

    def send(event: Event) -> None:
        nonlocal reported
        if subscription.dropped > reported:
            missed, reported = subscription.dropped - reported, subscription.dropped
            reply.send({"stream": "dropped", "dropped": missed,
                        "data": f"[wharf] {missed} events dropped: this reader was too slow\n"})
        if wanted(event):
            reply.send(message(event))

    try:
        while not ending.done():
            getting = asyncio.ensure_future(subscription.get())
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((getting, ending), return_when=asyncio.FIRST_COMPLETED)
            if getting.done():
                send(getting.result())
            else:
                getting.cancel()
                if not ending.done():  # cancelled from outside
                    raise asyncio.CancelledError
        while (event := subscription.get_nowait()) is not None:
            send(event)
    finally:
        subscription.close()
