"""The one way a blocking driver call comes back to the UI: a typed message.

`run_blocking` runs the call on a thread worker of its owner (the app, or a screen) and posts
the message `result(value, error)` makes of its outcome to that owner: the value and None, or
None and the exception it raised. The owner's handler for that message (Textual's `on_...`)
then applies it on the UI thread. Nothing else comes back from a worker: no callback run with
call_from_thread, no handler called from a thread. `WorkResult` is the message for calls that
need no message of their own; HostPolled, HostFailed and ActionFinished (messages.py) are made
by their owners' `result`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from textual.message import Message

T = TypeVar("T")
Result = Callable[[T | None, Exception | None], Message | None]


class Workers(Protocol):
    """What runs workers and receives their messages: the App, or a Screen (tests pass a stand-in)."""

    def run_worker(self, work: Callable[[], Any], *args: Any, **kwargs: Any) -> object: ...

    def post_message(self, message: Message) -> bool: ...


class WorkResult(Message, Generic[T]):
    """A blocking call's outcome: its value, or the exception it raised (then value is None);
    `tag` says what the call was for (a URI, a dialog's state), for the handler."""

    def __init__(self, value: T | None = None, error: Exception | None = None, *, tag: Any = None) -> None:
        super().__init__()
        self.value = value
        self.error = error
        self.tag = tag

    @classmethod
    def tagged(cls, tag: Any) -> Callable[[T | None, Exception | None], WorkResult[T]]:
        """The `result` of run_blocking that makes this message carrying `tag`."""
        return functools.partial(cls, tag=tag)


def run_blocking(owner: Workers, call: Callable[[], T], result: Result[T], *, name: str = "",
                 group: str = "default", exclusive: bool = False) -> None:
    """Run `call` on a thread worker of `owner` and post `result(value, error)` to `owner` (nothing
    when it is None). An Exception is caught and handed over; `result` runs on the worker thread too
    (cheap: it only builds the message)."""

    def work() -> None:
        message = _outcome(call, result)
        if message is not None:
            owner.post_message(message)

    owner.run_worker(work, thread=True, name=name, group=group, exclusive=exclusive, exit_on_error=False)


def run_now(owner: object, call: Callable[[], T], result: Result[T]) -> None:
    """run_blocking's path without the worker and the queue, for a call that is quick (an in-process
    host): the call runs on this, the UI, thread, and its message goes straight to the handler Textual
    would hand it to (`owner.on_...`). The scheduler's first polls of in-process hosts: a posted
    message would be handled after the first frame."""
    message = _outcome(call, result)
    if message is not None:
        getattr(owner, message.handler_name)(message)


def _outcome(call: Callable[[], T], result: Result[T]) -> Message | None:
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - handed to the UI thread in the message, logged there or by result
        return result(None, exc)
    return result(value, None)
