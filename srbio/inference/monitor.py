"""How a long prediction tells its caller how far it is, and learns that it must stop.

The CLI shows progress with tqdm and stops on signals; a GUI (the napari predict widget) gives
a :class:`Monitor` instead: the predictor reports after every batch of tiles and every block
written, and raises :class:`Cancelled` at the next report once ``should_stop`` says so. A
store's finished blocks are kept, so a cancelled prediction resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):  # noqa: N818 (a request, not an error)
    """The caller asked the prediction to stop (finished store blocks are kept)."""


@dataclass
class Monitor:
    """Progress callback and cancel check of one prediction.

    Attributes
    ----------
    on_progress : callable, optional
        Called with ``(done, total)`` in ``unit``.
    should_stop : callable, optional
        Polled at every report; True stops the prediction with :class:`Cancelled`.
    unit : str
        What ``on_progress`` counts: ``"tiles"`` (an in-memory region) or ``"blocks"`` (a
        store's level-0 blocks).
    """

    on_progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None
    unit: str = "tiles"

    def check(self) -> None:
        """Raise :class:`Cancelled` when the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("prediction cancelled")

    def report(self, done: int, total: int, unit: str) -> None:
        """Check for a stop, then pass ``done`` of ``total`` on when counted in this unit."""
        self.check()
        if unit == self.unit and self.on_progress is not None:
            self.on_progress(int(done), int(total))
