"""tvdcn: vendor torchvision, apply our deform_conv2d patch series, build, verify and benchmark it.

``python -m tvdcn --help`` lists the commands (tvdcn.__main__). Each module does one job:

- :mod:`tvdcn.paths`       where things live (the repo, the work tree, the shared cache)
- :mod:`tvdcn.log`         progress lines and ``Failure``, the error a user can act on
- :mod:`tvdcn.pin`         the pin of upstream in ``vendor/torchvision.toml``
- :mod:`tvdcn.fetch`       getting the upstream source and proving it is the pinned one
- :mod:`tvdcn.series`      the vendored git tree: pristine commit, one commit per patch, export back
- :mod:`tvdcn.build`       building variants (baseline, patched, prefixes) with caching, and the wheel
- :mod:`tvdcn.variant`     what a variant name means (built, stock stack, standalone kernel) and
                           how a process runs one
- :mod:`tvdcn.isolate`     running cases against a variant in child processes (:mod:`tvdcn.worker`)
- :mod:`tvdcn.cases`       the test cases and their inputs; :mod:`tvdcn.reference` the float64 reference
- :mod:`tvdcn.catalog`     what is benchmarked: the configs by name, their inputs, ResNet-50 with DCNv2
- :mod:`tvdcn.bench`       the side-by-side benchmark's timing; :mod:`tvdcn.benchreport` its tables and
                           plot; :mod:`tvdcn.peers` ONNX Runtime and OpenVINO; :mod:`tvdcn.profile`
                           perf's split of a training step
- :mod:`tvdcn.threadprobe` in a variant's process: on how many threads the op's work runs
- :mod:`tvdcn.dropin`      the drop-in wheel (tvdcn-fast) and the stock stacks it serves
- :mod:`tvdcn.standalone`  a variant's kernel file compiled alone (many-core runs)
- :mod:`tvdcn.coverage`    line and branch coverage of the kernel file
- :mod:`tvdcn.apply`, :mod:`tvdcn.prbody`  the series onto a checkout; a patch's PR body
- :mod:`tvdcn.ci`          the CI matrix, its workflow, one cell run locally
"""
import os

if os.environ.get("TVDCN_DROPIN") == "1":
    # This process is a stock stack's "+fast" variant (tvdcn.variant): route torchvision's kernels.
    import tvdcn_fast  # noqa: F401
