// bindings.cpp — the pybind11 module lc_kernels._C over the torch-free core (csrc/).
//
// The Python side (lc_kernels/backends/cpu_backend.py) validates tensors, allocates every
// output and passes raw data pointers, shapes and strides here; this layer only unpacks them,
// releases the GIL and calls the core. It links no libtorch, so one build serves every torch
// version.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "lc_core.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;
using lck::DType;

namespace {

template <typename P>
P* ptr(std::uintptr_t p) { return reinterpret_cast<P*>(p); }

lck::LayerLogits layer_logits(std::uintptr_t data, int dtype, int64_t L, int64_t R, int64_t V, int64_t stride_l, int64_t stride_r) {
  if (dtype < 0 || dtype > 3) throw py::value_error("lc_kernels._C: unknown dtype code");
  if (L < 2 || R < 0 || V < 1) throw py::value_error("lc_kernels._C: need L >= 2, R >= 0, V >= 1");
  return {ptr<const void>(data), static_cast<DType>(dtype), L, R, V, stride_l, stride_r};
}

void contrast(std::uintptr_t z, int dtype, int64_t L, int64_t R, int64_t V, int64_t stride_l, int64_t stride_r,
              double log_alpha, int divergence, bool batch_select, int num_threads,
              std::uintptr_t tokens, std::uintptr_t premature, std::uintptr_t div, std::uintptr_t logits,
              std::uintptr_t status) {
  const lck::LayerLogits in = layer_logits(z, dtype, L, R, V, stride_l, stride_r);
  const lck::ContrastOptions opt{log_alpha, static_cast<lck::Divergence>(divergence), batch_select, num_threads};
  const lck::ContrastOutputs out{ptr<int64_t>(tokens), ptr<int64_t>(premature), ptr<void>(div), ptr<void>(logits),
                                 ptr<int32_t>(status)};
  py::gil_scoped_release release;
  lck::contrast_forward(in, opt, out);
}

void loss(std::uintptr_t z, int dtype, int64_t L, int64_t R, int64_t V, int64_t stride_l, int64_t stride_r,
          std::uintptr_t targets, std::uintptr_t entity_mask, std::uintptr_t relation_mask,
          double log_alpha, int divergence, bool batch_select, int gate, int64_t top_u,
          double lambda_entity, double lambda_relation, int64_t ignore_index, int num_threads,
          std::uintptr_t loss_out, std::uintptr_t premature, std::uintptr_t gate_out, std::uintptr_t div,
          std::uintptr_t grad, std::uintptr_t status) {
  const lck::LayerLogits in = layer_logits(z, dtype, L, R, V, stride_l, stride_r);
  const lck::LossInputs li{ptr<const int64_t>(targets), ptr<const uint8_t>(entity_mask), ptr<const uint8_t>(relation_mask)};
  const lck::LossOptions opt{log_alpha, static_cast<lck::Divergence>(divergence), batch_select,
                             static_cast<lck::Gate>(gate), top_u, lambda_entity, lambda_relation, ignore_index, num_threads};
  const lck::LossOutputs out{ptr<void>(loss_out), ptr<int64_t>(premature), ptr<uint8_t>(gate_out), ptr<void>(div),
                             ptr<void>(grad), ptr<int32_t>(status)};
  py::gil_scoped_release release;
  lck::loss_forward(in, li, opt, out);
}

py::dict build_info() {
  py::dict d;
#ifdef _OPENMP
  d["openmp"] = true;
  d["openmp_max_threads"] = omp_get_max_threads();
#else
  d["openmp"] = false;
  d["openmp_max_threads"] = 1;
#endif
  d["flags"] = LC_KERNELS_BUILD_FLAGS;
  d["compiler"] = LC_KERNELS_COMPILER;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "lc_kernels CPU core: fused layer-contrast decode and loss kernels";
  m.def("contrast", &contrast, "Decode / contrast-logits forward over raw pointers (see csrc/lc_core.h)");
  m.def("loss", &loss, "Loss forward + gradient over raw pointers (see csrc/lc_core.h)");
  m.def("build_info", &build_info, "Compiler, flags and OpenMP of this build");
}
