"""tvdcn.variant: the stock stacks' variants, the emulated one included, and where the drop-in's
variants take the series' declarations from (the wheel's build record, not the vendored tree)."""
from __future__ import annotations

import json

import pytest

from tvdcn import paths, variant
from tvdcn.log import Failure

pytestmark = [pytest.mark.tooling]


def test_the_emulated_stack_is_a_variant_like_the_others():
    v = variant.parse("aarch64-tv0.29+fast")
    assert v == variant.Stock("aarch64-tv0.29+fast", stack=variant.EMULATED["aarch64-tv0.29"], fast=True)
    assert v.stack.emulated and not variant.STACKS["tv0.29"].emulated
    assert v.stack.interpreter.name == "host-python" and str(v.stack.base).startswith("/opt/tvdcn/stacks/")
    assert v.stack.prepare_command == "python -m tvdcn aarch64"


@pytest.mark.parametrize("name", ["tv0.29", "aarch64-tv0.29"])
def test_the_drop_in_variant_carries_the_declarations_of_its_wheel(tmp_path, monkeypatch, name):
    monkeypatch.setattr(paths, "STACK_ENVS", tmp_path / "stacks")
    monkeypatch.setattr(paths, "DIST", tmp_path / "dist")
    monkeypatch.setattr(paths, "DROPIN_DIST", tmp_path / "dist" / "dropin")
    stack = variant.parse(name).stack
    stack.env.mkdir(parents=True)
    stack.record.write_text(json.dumps({"stack": name, "torch": stack.torch, "torchvision": stack.torchvision}))
    stamp = variant.dropin_dist(stack.arch) / "build.json"
    stamp.parent.mkdir(parents=True)
    wheel = {"wheel": "w.whl", "version": "1.0.0+dcn28.gabc", "commit": "c0ffee", "n_patches": 28}
    stamp.write_text(json.dumps(wheel))
    with pytest.raises(Failure, match="predates the declarations"):
        variant.Stock(name + "+fast", stack=stack, fast=True).info()
    declared = {"declared": {"out": "0017 ..."}, "thread_dependent": {"grad_weight": "0026 ..."}}
    stamp.write_text(json.dumps({**wheel, **declared}))
    info = variant.Stock(name + "+fast", stack=stack, fast=True).info()
    assert {k: info[k] for k in ("commit", "n_patches", "declared", "thread_dependent")} == {
        "commit": "c0ffee", "n_patches": 28, **declared}
