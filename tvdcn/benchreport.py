"""What a benchmark run prints, from its JSON (tvdcn.bench): the environment, the agreement
checks and the tables (markdown), and with ``--plot`` the thread sweep as a picture."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .catalog import MODEL
from .log import Failure


def report(result: dict[str, Any]) -> str:
    """What a run prints (environment, agreement checks, the tables), from its JSON (``--json``):
    the same text whether the run just ended or is read back later."""
    meta, env, rows = result["meta"], result["env"], result["rows"]
    names, peers = list(meta["variants"]), list(meta["peers"])
    out = [f"## Environment\n\n- CPU: {meta['cpu']} ({meta['cores']} cores), Python {meta['python']}, "
           f"torch {meta['torch']}, threads {meta['threads']}",
           "- variants: " + ", ".join(f"{n} = torchvision {v}" for n, v in meta["variants"].items())]
    if peers:
        out.append("- peers: " + ", ".join(f"{p} {v}" for p, v in meta["peers"].items()))
    # Per check ("conv2d" or a peer): the largest difference relative to the output's magnitude.
    worst: dict[str, float] = {}
    for k, v in meta["peer_agreement"].items():
        w = k.split(":")[0]
        worst[w] = max(worst.get(w, v), v)
    if "conv2d" in worst:
        out.append(f"- {names[0]} with zero offsets and mask 1 against dense conv2d (the floor's check): "
                   f"{worst.pop('conv2d'):.2g}")
    if worst:
        out.append(f"- peers against {names[0]} (largest difference relative to the output's magnitude): "
                   + ", ".join(f"{w} {v:.2g}" for w, v in sorted(worst.items())))
    out.append(f"- {meta['mode']}, float32, {meta['kernel']}; {meta['rounds']} interleaved processes per variant;"
               f" {MODEL}: batch 1, 512x512, plain ResNet-50 as its floor")
    out.append("\n<details><summary>torch.__config__.parallel_info()</summary>\n\n```\n"
               + env.get("parallel_info", "").strip() + "\n```\n</details>\n")
    out.append(markdown(rows, names, peers))
    if "memory" in result:
        out.append("\n" + memory_markdown(result["memory"], names))
    return "\n".join(out)


def markdown(rows: list[dict[str, Any]], names: list[str], peers: list[str] = ()) -> str:
    """A table ready for a PR body: median (min-max of per-round medians), speedups, and the
    last variant's time over the dense conv2d floor's and over the best peer's."""
    last = names[-1]
    cols = names + [w for w in ["conv2d", *peers] if any(w in r for r in rows)]
    floor = any("conv2d" in r for r in rows)
    has_peers = any(f"over_best_peer_{last}" in r for r in rows)
    head = ["case"] + [f"{n} ms" for n in cols] + [f"speedup {n}" for n in names[1:]]
    head += [f"{last} / floor"] if floor else []
    head += [f"{last} / best peer"] if has_peers else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["case"]]
        cells += [f"{r[n]['median_ms']:.2f} ({r[n]['min_ms']:.2f}–{r[n]['max_ms']:.2f})" if n in r else "–"
                  for n in cols]
        cells += [f"{r[f'speedup_{n}']:.2f}x" if f"speedup_{n}" in r else "–" for n in names[1:]]
        if floor:
            cells += [f"{r[f'over_conv2d_{last}']:.2f}x" if f"over_conv2d_{last}" in r else "–"]
        if has_peers:
            cells += [f"{r[f'over_best_peer_{last}']:.2f}x" if f"over_best_peer_{last}" in r else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_markdown(mem: dict[str, dict[str, dict[str, float]]], names: list[str]) -> str:
    head = ["case", "returned MiB"] + [f"{n}: extra MiB" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in mem[names[0]]:
        cells = [case, f"{mem[names[0]][case]['output_mib']:.0f}"] + [f"{mem[n][case]['extra_mib']:.0f}" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return ("Peak memory growth beyond what the call returns (forward: the output; train, forward + backward: "
            "the output and the five gradients), one fresh process per case:\n\n" + "\n".join(lines))


def plot(rows: list[dict[str, Any]], names: list[str], peers: list[str], out: Path) -> None:
    try:
        import matplotlib
    except ImportError as e:
        raise Failure(f"--plot needs matplotlib ({e}): .venv/bin/pip install -r requirements-bench.txt")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted({r["case"].rsplit("@", 1)[0] for r in rows})
    ncols = min(4, len(cases))
    nrows = (len(cases) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows), squeeze=False)
    who = names + ["conv2d", *peers]
    colors = {w: f"C{i}" for i, w in enumerate(who)}  # the same color for a series in every panel
    for ax in axes.flat[len(cases):]:
        ax.set_visible(False)
    for ax, case in zip(axes.flat, cases):
        mine = sorted((int(r["case"].rsplit("@", 1)[1]), r) for r in rows if r["case"].rsplit("@", 1)[0] == case)
        for w in who:
            pts = [(t, r[w]["median_ms"]) for t, r in mine if w in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=w, color=colors[w])
        ax.set_title(case, fontsize="small")
        ax.set_xlabel("threads")
        ax.set_ylabel("ms")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
