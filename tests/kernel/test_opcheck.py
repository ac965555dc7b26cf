"""torch.library.opcheck (schema, autograd registration, fake tensor, AOT dispatch) on a grid of
configurations beyond upstream's generated cases, against each variant in its own process."""
from __future__ import annotations

import json

import pytest

from conftest import BASELINE, OPCHECK_CONFIGS, PATCHED, SUMMARY
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.pr, pytest.mark.dropin]

CODE = """
import json, dataclasses
import torchvision  # registers the ops
from tvdcn.cases import Case, grid, make_inputs
configs = [c for c in grid() if c.batch in (1, 7, 33)] + [dataclasses.replace(Case(), batch=0)]
n = {n}
if n:  # --opcheck-configs: N spread over the families, and batch 0 (under emulation: tvdcn.aarch64)
    configs = configs[:-1][::max(1, (len(configs) - 1) // n)][:n] + configs[-1:]
out = []
for c in configs:
    t = make_inputs(c)
    args = (t["input"].requires_grad_(), t["weight"].requires_grad_(), t["offset"].requires_grad_(),
            (t["mask"] if c.mask else torch.zeros(c.batch, 1, dtype=t["input"].dtype)).requires_grad_(),
            (t["bias"] if c.bias else torch.zeros(c.cout, dtype=t["input"].dtype)).requires_grad_(),
            *c.stride, *c.pad, *c.dil, c.wgroups, c.ogroups, c.mask)
    try:
        res = torch.library.opcheck(torch.ops.torchvision.deform_conv2d.default, args)
        out.append({"case": c.id, "result": res})
    except Exception as e:
        out.append({"case": c.id, "error": f"{type(e).__name__}: {e}"[:2000]})
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", [PATCHED, BASELINE])
def test_opcheck_grid(name):
    r = run_snippet(name, CODE.replace("{n}", str(OPCHECK_CONFIGS or 0)), timeout=1800)
    assert r.returncode == 0, describe_failure(r.returncode, r.stderr)
    results = json.loads(r.stdout.strip().splitlines()[-1])
    failed = [x for x in results if "error" in x or any(v != "SUCCESS" for v in x["result"].values())]
    SUMMARY[f"opcheck grid on {name} (configs)"].update(passed=len(results) - len(failed), failed=len(failed))
    assert len(results) >= (OPCHECK_CONFIGS + 1 if OPCHECK_CONFIGS else 20)
    assert not failed, failed[:3]
