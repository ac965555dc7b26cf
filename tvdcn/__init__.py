"""tvdcn: vendor torchvision, apply our deform_conv2d patch series, build, verify and benchmark it.

Each module does one job:

- :mod:`tvdcn.paths`   where things live (the repo, the work tree, the shared cache)
- :mod:`tvdcn.pin`     the pin of upstream in ``vendor/torchvision.toml``
- :mod:`tvdcn.fetch`   getting the upstream source and proving it is the pinned one
- :mod:`tvdcn.series`  the vendored git tree: pristine commit, one commit per patch, export back
- :mod:`tvdcn.build`   building variants (baseline, patched, prefixes) with caching, and the wheel
- :mod:`tvdcn.variant` running Python against one built variant, in its own process
- :mod:`tvdcn.bench`   the side-by-side benchmark
- :mod:`tvdcn.dropin`  the drop-in wheel (tvdcn-fast) and the stock torch/torchvision stacks it serves
"""
import os

if os.environ.get("TVDCN_DROPIN") == "1":
    # This process is a stock stack's "+fast" variant (tvdcn.variant): route torchvision's kernels.
    import tvdcn_fast  # noqa: F401
