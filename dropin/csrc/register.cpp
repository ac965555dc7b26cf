// The drop-in's own op namespace. The kernels in ops/cpu/deform_conv2d_kernel.cpp (taken from the
// patched torchvision tree at build time, with its registration moved to this namespace) implement
// these two schemas, which are torchvision's: tvdcn_fast/__init__.py checks that at runtime
// against the installed torchvision before routing torchvision's CPU calls here.
#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY(tvdcn_fast, m) {
  m.def(
      "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
      "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
      "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor");
  m.def(
      "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, "
      "Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, "
      "SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}
