"""Issue 24, a prototype, not a patch: prefix-35's forward (a round of tiles gathered in parallel,
its GEMM after the region) with that GEMM through aten::mkldnn_convolution (oneDNN, a 1x1
convolution over the channels-last columns; the transpose into the output and the bias in one
loop) instead of aten::mm (MKL), groups == 1 only. Variants (standalone, tvdcn.standalone):
proto_p35 (prefix-35 as is), proto_mm_r4k (rounds of >= 4096 pixels, mm), proto_dnn_r0 (rounds of
one tile per thread, oneDNN), proto_dnn_r1k / proto_dnn_r4k (rounds of >= 1024 / 4096 pixels).

  .venv/bin/python results/2026-12-01/onednn-gemm.py build   # after scripts/build.sh
  .venv/bin/python -m tvdcn.bench --variants sa:patched,sa:proto_p35,sa:proto_dnn_r4k ...
"""
import subprocess, sys
sys.path.insert(0, "/work/main")
from tvdcn import standalone

SRC = subprocess.run(["git", "-C", str(standalone.paths.REPO / ".work/src/torchvision"), "show",
                      "series~1:torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp"],
                     check=True, capture_output=True, text=True).stdout
standalone.stage(["patched"])
if len(sys.argv) > 1:
    print(standalone._build_one(standalone.ROOT / "patched"), flush=True)
HDR = (standalone.ROOT / "patched" / "StableABICompat.h").read_text()
HELPER = '''
// aten::mkldnn_convolution(Tensor self, Tensor weight, Tensor? bias,
// SymInt[] padding, SymInt[] stride, SymInt[] dilation, SymInt groups)
inline Tensor mkldnn_convolution(const Tensor& self, const Tensor& weight) {
  std::array<StableIValue, 7> stack{
      torch::stable::detail::from(self),
      torch::stable::detail::from(weight),
      torch::stable::detail::from(std::optional<Tensor>()),
      torch::stable::detail::from(std::vector<int64_t>{0, 0}),
      torch::stable::detail::from(std::vector<int64_t>{1, 1}),
      torch::stable::detail::from(std::vector<int64_t>{1, 1}),
      torch::stable::detail::from(int64_t(1))};
  TORCH_ERROR_CODE_CHECK(torch_call_dispatcher(
      "aten::mkldnn_convolution", "", stack.data(), TORCH_ABI_VERSION));
  return torch::stable::detail::to<Tensor>(stack[0]);
}
'''
HDR = HDR.replace("#include <array>", "#include <array>\n#include <optional>\n#include <vector>")
HDR = HDR.replace("} // namespace stable_helpers", HELPER + "\n} // namespace stable_helpers")

k = SRC
old_round = """  const int64_t round_tasks =
      std::min<int64_t>(torch::stable::get_num_threads(), chunk_imgs * n_tiles);"""
assert old_round in k
k = k.replace(old_round, """  const int64_t round_tasks = std::min<int64_t>(
      std::max<int64_t>(torch::stable::get_num_threads(), (ROUND_PIXELS + tile - 1) / tile),
      chunk_imgs * n_tiles);""")
old_mm = """                for (int64_t g = 0; g < n_weight_grps; ++g) {
                  Tensor cols_g =
                      torch::stable::narrow(cols, 1, g * k_per_grp, k_per_grp);
                  stable_helpers::mm_out("""
assert old_mm in k
k = k.replace(old_mm, """                if (USE_DNN && n_weight_grps == 1) {
                  Tensor x = torch::stable::transpose(torch::stable::transpose(
                      torch::stable::view(cols, {1, 1, n_pix, col_rows}), 1, 3), 2, 3);
                  Tensor w4 = torch::stable::view(weight_grps[0], {out_channels, col_rows, 1, 1});
                  Tensor y = stable_helpers::mkldnn_convolution(x, w4);
                  const scalar_t* y_ptr = y.const_data_ptr<scalar_t>();
                  const scalar_t* bias_ptr = bias_c.const_data_ptr<scalar_t>();
                  scalar_t* o_ptr = out.mutable_data_ptr<scalar_t>() +
                      (b0 + b) * out_channels * out_hw + pix_begin;
                  STD_TORCH_CHECK(y.stride(1) == 1 && y.stride(3) == out_channels, "layout ", y.stride(0), " ", y.stride(1), " ", y.stride(2), " ", y.stride(3));
                  torch::stable::parallel_for(0, out_channels, 16,
                      [&](int64_t o0, int64_t o1) noexcept {
                        for (int64_t o = o0; o < o1; ++o) {
                          for (int64_t p = 0; p < n_pix; ++p) {
                            o_ptr[o * out_hw + p] = y_ptr[p * out_channels + o] + bias_ptr[o];
                          }
                        }
                      });
                  t = t_end;
                  continue;
                }
                for (int64_t g = 0; g < n_weight_grps; ++g) {
                  Tensor cols_g =
                      torch::stable::narrow(cols, 1, g * k_per_grp, k_per_grp);
                  stable_helpers::mm_out(""")
old_bias = """        const scalar_t* bias_ptr = bias_c.const_data_ptr<scalar_t>();
        scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
        torch::stable::parallel_for(
            0,
            batch_sz * out_channels,"""
assert old_bias in k
k = k.replace(old_bias, """        if (USE_DNN && n_weight_grps == 1) {
          return;
        }
""" + old_bias)

variants = {}
for name, use, rp in (("p35", 0, 0), ("dnn_r0", 1, 0), ("dnn_r1k", 1, 1024), ("dnn_r4k", 1, 4096), ("mm_r4k", 0, 4096)):
    variants[name] = f"#define USE_DNN {use}\n#define ROUND_PIXELS {rp}\n"
src = standalone.ROOT / "patched"
for name, defs in variants.items():
    v = "proto_" + name
    kt = k.replace("STABLE_TORCH_LIBRARY_IMPL(torchvision, CPU, m)",
                   f"STABLE_TORCH_LIBRARY_IMPL({standalone.namespace('patched')}, CPU, m)")
    dst = standalone.clone(src, v, kt.replace("#include <algorithm>", defs + "#include <algorithm>", 1))
    (dst / "StableABICompat.h").write_text(HDR)
    if len(sys.argv) > 1:
        print(standalone._build_one(dst), flush=True)
