"""The fix for a faust-streaming 0.15.3 race at the end of a changelog restore.

Private names it depends on, and why (faust-streaming 0.15.3):

* ``Recovery.on_recovery_completed``: replaced (a method of Faust's recovery service,
  not a hook); the replacement calls the original.
* ``Consumer.stop_flow``, ``App.flow_control.suspend``: public, the same calls Faust's
  ``_resume_streams`` pairs with its ``resume_flow``.
"""

from __future__ import annotations

from faust.tables.recovery import Recovery

_on_recovery_completed = Recovery.on_recovery_completed


async def _seek_before_resuming_streams(self: Recovery, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` with the flow stopped until the streams are seeked.

    After restoring a changelog, faust-streaming 0.15.3 resumes the stream partitions
    while the flow is still on (it was turned on to read the changelog) and only then
    seeks them to the committed offsets. Records fetched in between are processed and
    move the read offset; the seek moves it back, and the next record already fetched
    opens a "gap" that Faust counts as acknowledged: the records in it are committed
    without ever being processed. Stopping the flow first closes the window; the
    original method turns it back on after the seek (as ``_resume_streams`` does).
    """
    self.app.consumer.stop_flow()
    self.app.flow_control.suspend()
    await _on_recovery_completed(self, generation_id)


def install() -> None:
    """Idempotent: the original method is kept once, at import."""
    Recovery.on_recovery_completed = _seek_before_resuming_streams  # type: ignore[method-assign]
