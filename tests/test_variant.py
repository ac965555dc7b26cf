"""tvdcn.variant: the stock stacks' variants, the emulated one included."""
from __future__ import annotations

import pytest

from tvdcn import variant

pytestmark = [pytest.mark.tooling]


def test_the_emulated_stack_is_a_variant_like_the_others():
    v = variant.parse("aarch64-tv0.29+fast")
    assert v == variant.Stock("aarch64-tv0.29+fast", stack=variant.EMULATED["aarch64-tv0.29"], fast=True)
    assert v.stack.emulated and not variant.STACKS["tv0.29"].emulated
    assert v.stack.interpreter.name == "host-python" and str(v.stack.base).startswith("/opt/tvdcn/stacks/")
    assert v.stack.prepare_command == "python -m tvdcn aarch64"
