"""The op under contexts that rely on thread-local state gives the bits of the plain call.

The patched forward runs a BLAS GEMM (addmm.out through a C shim) inside the worker threads of
``torch::stable::parallel_for``, and the backward works there too. Whatever a context keeps in
thread-local state (profiler callbacks, inference mode, a Python dispatch mode, the autograd
state torch.compile's traced graphs run under, the deterministic-algorithms fill, a second Python
thread sharing the intra-op pool) must not change a bit of any result, nor get lost: the profile
records the op, the dispatch mode sees it, and torch.compile captures a graph. (The GEMM itself
is not in the profile: the shim calls the CPU kernel, not the dispatcher; only the op's events are
required.)

For each thread count, one process computes every case's output and gradients (fixed grad_out)
plainly, then under each context; this process compares them by bit pattern (conftest.bits_equal).
A crash fails the context it happened in; the contexts after it run in a fresh process.
"""
from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import PATCHED, SUMMARY, bits_equal
from tvdcn.cases import Case
from tvdcn.isolate import describe_failure, run_snippet

pytestmark = [pytest.mark.prefix, pytest.mark.fast]

THREADS = (1, 2)
# Several output channels per weight group, so the forward's GEMM has more than one row per tile.
CASES = [
    Case(batch=2, cin=8, cout=8, h=12, w=12, wgroups=2, ogroups=2),
    Case(batch=3, cin=64, cout=64, h=16, w=16),
    Case(batch=2, cin=6, cout=12, h=9, w=10, stride=(2, 1), wgroups=3, ogroups=3, mask=False, bias=False,
         dtype="float64"),
]
CONTEXTS = {
    "profiler": "torch.profiler.profile(activities=[CPU], record_shapes=True); forward + backward",
    "inference_mode": "torch.inference_mode(); forward only",
    "dispatch_mode": "a recording TorchDispatchMode passing every op through; forward + backward",
    "compile_eager": "torch.compile(fullgraph=False, backend='eager'); forward + backward",
    "compile_aot_eager": "torch.compile(fullgraph=False, backend='aot_eager'); forward + backward",
    "deterministic": "use_deterministic_algorithms(True), fill_uninitialized_memory = True",
    "python_threads": "two Python threads calling the op at once on different inputs",
    "channels_last": "every 4-D argument (input included) channels_last",
    "noncontig": "every argument a strided view (every other element of a wider buffer)",
}

# Runs the contexts named in TODO, in order; for each, saves {"plain": {case id: results},
# "got": [(case id, label, results)]} to OUT/<context>.pt, or writes the exception to
# OUT/<context>.error, and its notes to OUT/<context>.json.
CODE = """
import dataclasses, json, pathlib, sys, threading, traceback
import torchvision  # registers the ops
from tvdcn.cases import Case, make_inputs, run
from tvdcn.standalone import current_op
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

op = current_op()
cases = [Case.from_json(c) for c in json.loads({cases!r})]
inputs = {{c.id: make_inputs(c) for c in cases}}
plain = {{c.id: run(c, inputs[c.id]) for c in cases}}


def fwd_bwd(c, t, call):
    # run()'s forward + backward, through CALL(input, offset, weight, bias, mask).
    names = ["input", "offset", "weight"] + (["mask"] if c.mask else []) + (["bias"] if c.bias else [])
    leaves = {{n: t[n].clone().requires_grad_() for n in names}}
    out = call(leaves["input"], leaves["offset"], leaves["weight"], leaves.get("bias"), leaves.get("mask"))
    res = {{"out": out.detach()}}
    out.backward(t["grad_out"])
    for n in names:
        res["grad_" + n] = leaves[n].grad
    return res


def plain_call(c):
    return lambda x, o, w, b, m: op(x, o, w, b, stride=c.stride, padding=c.pad, dilation=c.dil, mask=m)


def ctx_profiler(notes):
    out = []
    for c in cases:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            out.append((c.id, "", run(c, inputs[c.id])))
        names = {{e.name for e in prof.events()}}
        notes[c.id] = sorted(n for n in names if "deform_conv2d" in n or "mm" in n)
    return out


def ctx_inference_mode(notes):
    out = []
    for c in cases:
        t = inputs[c.id]
        with torch.inference_mode():
            y = plain_call(c)(t["input"], t["offset"], t["weight"], t["bias"] if c.bias else None,
                              t["mask"] if c.mask else None)
        notes["is_inference"] = bool(y.is_inference())
        out.append((c.id, "", {{"out": y}}))
    return out


class Recording(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(str(func))
        return func(*args, **(kwargs or {{}}))


def ctx_dispatch_mode(notes):
    out = []
    seen = set()
    for c in cases:
        mode = Recording()
        with mode:
            out.append((c.id, "", run(c, inputs[c.id])))
        seen |= mode.seen
    notes["ops"] = sorted(seen)
    return out


def compiled(backend):
    from torch._dynamo.utils import counters

    def ctx(notes):
        out = []
        for c in cases:
            torch._dynamo.reset()
            before = counters["stats"]["unique_graphs"]
            fn = torch.compile(plain_call(c), fullgraph=False, backend=backend, dynamic=False)
            out.append((c.id, "", fwd_bwd(c, inputs[c.id], fn)))
            notes[c.id] = counters["stats"]["unique_graphs"] - before
        return out
    return ctx


def ctx_deterministic(notes):
    import torch.utils.deterministic as det
    was, was_fill = torch.are_deterministic_algorithms_enabled(), det.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    det.fill_uninitialized_memory = True
    try:
        return [(c.id, "", run(c, inputs[c.id])) for c in cases]
    finally:
        torch.use_deterministic_algorithms(was)
        det.fill_uninitialized_memory = was_fill


def ctx_python_threads(notes):
    # Thread A takes the cases in order, thread B in reverse, in step (a barrier before each
    # call): the two call the op at the same time on different inputs.
    rounds = 2
    barrier = threading.Barrier(2)
    got, errors = [], []

    def worker(label, order):
        try:
            for r in range(rounds):
                for c in order:
                    barrier.wait()
                    got.append((c.id, f"{{label}}, round {{r}}", run(c, inputs[c.id])))
        except BaseException:
            errors.append(traceback.format_exc())
            barrier.abort()

    ts = [threading.Thread(target=worker, args=("thread A", cases)),
          threading.Thread(target=worker, args=("thread B", cases[::-1]))]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    if errors:
        raise RuntimeError(errors[0])
    return got


def layout(name):
    def ctx(notes):
        # Same values (make_inputs of the contiguous case), another layout.
        return [(c.id, "", run(dataclasses.replace(c, layout=name), inputs[c.id])) for c in cases]
    return ctx


CONTEXTS = {{
    "profiler": ctx_profiler,
    "inference_mode": ctx_inference_mode,
    "dispatch_mode": ctx_dispatch_mode,
    "compile_eager": compiled("eager"),
    "compile_aot_eager": compiled("aot_eager"),
    "deterministic": ctx_deterministic,
    "python_threads": ctx_python_threads,
    "channels_last": layout("channels_last"),
    "noncontig": layout("noncontig"),
}}
out = pathlib.Path({out!r})
for name in json.loads({todo!r}):
    print(f"tvdcn-context: {{name}}", file=sys.stderr, flush=True)
    notes = {{}}
    try:
        torch.save({{"plain": plain, "got": CONTEXTS[name](notes)}}, out / f"{{name}}.pt")
    except Exception:
        (out / f"{{name}}.error").write_text(traceback.format_exc()[-3000:])
    (out / f"{{name}}.json").write_text(json.dumps(notes))
print(json.dumps({{"ok": True}}))
"""


@functools.lru_cache(maxsize=None)
def outcomes(name: str, threads: int) -> dict[str, Any]:
    """Per context, for variant ``name`` at ``threads``: (notes, {"plain": ..., "got": ...}), or the
    message of what went wrong (the op raised, or the process died in that context; the contexts
    after it then run in a fresh process)."""
    res: dict[str, Any] = {}
    todo = list(CONTEXTS)
    with tempfile.TemporaryDirectory(prefix=f"tvdcn-contexts-{name}-t{threads}-") as tmp:
        out = Path(tmp)
        while todo:
            code = CODE.format(cases=json.dumps([c.to_json() for c in CASES]), todo=json.dumps(todo), out=str(out))
            r = run_snippet(name, code, threads=threads, timeout=600)
            for ctx in todo:
                if (out / f"{ctx}.json").exists():
                    notes = json.loads((out / f"{ctx}.json").read_text())
                    res[ctx] = f"the op raised:\n{(out / f'{ctx}.error').read_text()}" \
                        if (out / f"{ctx}.error").exists() else (notes, torch.load(out / f"{ctx}.pt"))
            if r.returncode == 0:
                break
            started = [ln.split(": ", 1)[1] for ln in r.stderr.splitlines() if ln.startswith("tvdcn-context: ")]
            why = f"the process died in this context: {describe_failure(r.returncode, r.stderr)}"
            if not started or started[-1] in res:  # died before or after the contexts: it fails them all
                return {ctx: f"the process died outside the contexts: {describe_failure(r.returncode, r.stderr)}"
                        for ctx in CONTEXTS}
            res[started[-1]] = why
            todo = [ctx for ctx in todo if ctx not in res]
    return res


def first_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    if a.dtype != b.dtype or a.shape != b.shape:
        return f"{a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}"
    ai, bi = (x.contiguous().view({torch.float32: torch.int32, torch.float64: torch.int64}[x.dtype]) for x in (a, b))
    ne = (ai != bi).nonzero()
    idx = tuple(ne[0].tolist())
    return f"{len(ne)} of {a.numel()} elements differ, first at {idx}: {a[idx].item()!r} vs {b[idx].item()!r}"


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("context", CONTEXTS)
def test_context_bit_identical_to_plain_call(context, threads):
    res = outcomes(PATCHED, threads)[context]
    counts = SUMMARY["contexts with thread-local state: == plain call (bits), per context and thread count"]
    if isinstance(res, str):
        counts["failed"] += 1
        pytest.fail(f"{PATCHED} at {threads} threads, under {context} ({CONTEXTS[context]}): {res}")
    notes, tensors = res
    got, plain = tensors["got"], tensors["plain"]
    bad = []
    assert {cid for cid, _, _ in got} == set(plain), f"{context}: results for {sorted({g[0] for g in got})}"
    for cid, label, r in got:
        want = plain[cid]
        where = f"{cid} ({label})" if label else cid
        keys = {"out"} if context == "inference_mode" else set(want)
        if set(r) != keys:
            bad.append(f"{where}: results {sorted(r)}, expected {sorted(keys)}")
            continue
        for k in sorted(keys):
            if not bits_equal(r[k], want[k]):
                bad.append(f"{where}: {k}: {first_difference(r[k], want[k])}")
    lost = None  # what the context should have recorded and did not
    if context == "profiler":
        missing = {cid: ev for cid, ev in notes.items() if not any("deform_conv2d" in e for e in ev)}
        if missing or len(notes) != len(CASES):
            lost = f"the profile has no deform_conv2d event (its deform/mm events per case: {notes})"
    elif context.startswith("compile_"):
        if len(notes) != len(CASES) or not all(n >= 1 for n in notes.values()):
            lost = f"torch.compile captured no graph (graphs per case: {notes})"
    elif context == "dispatch_mode":
        if not any(".deform_conv2d." in o for o in notes["ops"]):
            lost = f"the dispatch mode never saw deform_conv2d; it saw {notes['ops']}"
    elif context == "inference_mode":
        if not notes["is_inference"]:
            lost = "the output under inference_mode is not an inference tensor"
    counts["failed" if bad or lost else "passed"] += 1
    assert not bad, (f"{PATCHED} at {threads} threads, under {context} ({CONTEXTS[context]}), differs from "
                     f"the plain call in:\n  " + "\n  ".join(bad))
    assert lost is None, f"{PATCHED} at {threads} threads, under {context}: {lost}"
