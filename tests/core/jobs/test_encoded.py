"""A batch's encoding runs on the loop when small and in a thread when big."""

from __future__ import annotations

import threading

from core.jobs.model import ENCODE_INLINE_BELOW, encoded


async def test_small_batches_encode_inline_and_big_ones_in_a_thread() -> None:
    loop_thread = threading.get_ident()
    small = await encoded(ENCODE_INLINE_BELOW - 1, threading.get_ident)
    big = await encoded(ENCODE_INLINE_BELOW, threading.get_ident)
    assert small == loop_thread
    assert big != loop_thread
