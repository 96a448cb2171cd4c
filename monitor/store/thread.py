"""The SQLite store's thread: one thread running the store's calls one at a time, in order.
The poller's worker lanes (:mod:`monitor.poller`) are threads of this kind too.

Promises: calls run one at a time on one thread, in the order they were made; a call
cancelled before its turn does not run; the calls queued when the interpreter exits still
run before it does; a store never closed cannot hang the exit; the outcomes that finish
while the event loop is busy reach it together, with one wake-up.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextlib import suppress
from typing import Any, ClassVar, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class StoreThread(Executor):
    """One thread running the store's calls one at a time, in the order they were made.

    :meth:`call` is the event loop's way in: one queue put, and one wake-up of the loop
    with the outcome (shared with the other outcomes ready by then, see :class:`_Hub`).
    ``run_in_executor`` on a ThreadPoolExecutor chains a concurrent future to an asyncio
    one, with locks, conditions and callbacks on both threads; every first-sight poll makes
    five store calls (every 304 two), and while the feed worker holds the GIL each of those
    steps is a hand-over between threads. On bench/ingest.py's pipeline (passes alternated
    in one process) this cut the CPU spent outside the feed worker by about 8%.
    :meth:`submit` is the ordinary :class:`~concurrent.futures.Executor` way in, so
    ``run_in_executor`` still works on it (the benchmarks time the thread that way).

    As with ThreadPoolExecutor: a call cancelled before its turn never runs; one cancelled
    while it runs finishes, its outcome dropped; the work queued when the interpreter
    exits is done before it exits (the thread is a daemon finished by an ``atexit`` hook,
    so a store never closed cannot hang the exit either); and the thread ends once the
    object is dropped.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._worker = threading.Thread(target=_work, args=(self._queue,), name=name, daemon=True)
        self._worker.start()
        weakref.finalize(self, self._queue.put, None)
        _running.add(self)

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on the thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        hub = _Hub.of(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._put(functools.partial(_run_for_loop, hub, future, fn))
        return await future

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """``fn(*args, **kwargs)`` run on the thread, as a concurrent future."""
        future: Future[T] = Future()
        self._put(
            functools.partial(_run_for_future, future, functools.partial(fn, *args, **kwargs))
        )
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more work; the work queued so far is still done (``cancel_futures`` is
        not supported: a store call once queued is never dropped)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        if wait and threading.current_thread() is not self._worker:
            self._worker.join()

    def _put(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._queue.put(job)


_running: weakref.WeakSet[StoreThread] = weakref.WeakSet()


@atexit.register
def _finish_at_exit() -> None:
    """Do the work still queued before the interpreter goes (as ThreadPoolExecutor does)."""
    for thread in list(_running):
        thread.shutdown(wait=True)


def _work(jobs: queue.SimpleQueue[Callable[[], None] | None]) -> None:
    while (job := jobs.get()) is not None:
        job()
        del job  # not kept alive (with its arguments and result) until the next one comes


class _Hub:
    """The outcomes of calls, handed to one event loop with one wake-up however many pile up.

    ``call_soon_threadsafe`` per outcome writes a byte to the loop's self-pipe every time
    (a system call here, another to read it there, and a loop turn). While the loop has not
    yet taken the outcomes ready, another one joins them instead: only the first of a batch
    wakes the loop, which then settles the whole batch in the order the calls finished.
    """

    last: ClassVar[_Hub | None] = None  # one for every StoreThread: they wake the loop together

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Hub:
        """The hub of ``loop`` (a new one when the last hub served another loop)."""
        hub = cls.last
        if hub is None or hub.loop is not loop:
            hub = cls.last = cls(loop)
        return hub

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[Callable[[], None]] = []

    def put(self, settle: Callable[[], None]) -> None:
        """Hand ``settle`` to the loop (from the worker thread)."""
        with self._lock:
            self._ready.append(settle)
            if len(self._ready) > 1:
                return  # a wake-up is on its way and will take this one too
        with suppress(RuntimeError):  # the loop is closed: nobody waits for the outcome any more
            self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for settle in ready:
            settle()


def _run_for_loop(hub: _Hub, future: asyncio.Future[T], fn: Callable[[], T]) -> None:
    if future.cancelled():  # the caller gave up before its turn: nothing is run
        return
    try:
        result = fn()
    except StopIteration as exc:  # a future refuses it, which would leave the caller waiting
        error = RuntimeError(f"store call raised StopIteration: {exc!r}")
        settle = functools.partial(_set_exception, future, error)
    except BaseException as exc:  # handed to the caller, as run_in_executor does
        settle = functools.partial(_set_exception, future, exc)
    else:
        settle = functools.partial(_set_result, future, result)
    hub.put(settle)


def _set_result(future: asyncio.Future[T], result: T) -> None:
    if not future.cancelled():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)


def _run_for_future(future: Future[T], fn: Callable[[], T]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)
