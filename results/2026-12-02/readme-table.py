"""The README's figures table (2-thread rows) and its 1-thread summary, from a bench JSON.

    python results/2026-12-02/readme-table.py results/2026-12-02/bench-readme-v9.json
"""
import json
import sys

PEERS = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def fmt(v: float) -> str:
    return f"{v:#.3g}" if v < 100 else f"{v:.0f}"


def main(path: str) -> None:
    rows = {r["case"]: r for r in json.load(open(path))["rows"]}
    print("| case @ 2 threads | upstream | series | best peer | dense conv2d | vs upstream | series / conv2d "
          "| series / best peer |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for mode, label in (("forward", "forward"), ("train", "training step")):
        for cfg in ("s32-b1", "s32-b8", "s64-b1", "c4-det", "c3-det"):
            for t in (1, 2):
                r = rows.get(f"{mode}/{cfg}@{t}")
                if r is None:
                    continue
                up, us, fl = (r[k]["median_ms"] for k in ("baseline", "patched", "conv2d"))
                peers = {p: r[p]["median_ms"] for p in PEERS if p in r}
                best = min(peers, key=peers.get) if peers else None
                s = summary.setdefault((mode, t), {"up": [], "fl": [], "peer": []})
                s["up"].append(up / us)
                s["fl"].append(us / fl)
                if best:
                    s["peer"].append(us / peers[best])
                if t != 2:
                    continue
                peer = f"{fmt(peers[best])} ({PEERS[best]})" if best else "–"
                ratio = f"{us / peers[best]:.2f}x" if best else "–"
                print(f"| {label} {cfg} | {fmt(up)} | {fmt(us)} | {peer} | {fmt(fl)} | {up / us:.1f}x | "
                      f"{us / fl:.2f}x | {ratio} |")
    for (mode, t), s in sorted(summary.items()):
        rng = lambda v: f"{min(v):.2f}–{max(v):.2f}x" if v else "–"  # noqa: E731
        print(f"{mode}@{t}: vs upstream {min(s['up']):.1f}–{max(s['up']):.1f}x, over conv2d {rng(s['fl'])}, "
              f"over best peer {rng(s['peer'])}")


if __name__ == "__main__":
    main(sys.argv[1])
