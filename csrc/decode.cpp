// decode.cpp — the fused decode / contrast-logits forward on CPU (SPEC §3–§4).
//
// Passes over the vocabulary, per row (R rows, L layers, V tokens, b bytes per logit):
//   A) final layer: max + checks, exp + sum (cached), p_N and lp_N once per row;
//      each candidate j: max + checks, exp + sum (cached), divergence (one log per element
//      for jsd/dola). Reads each layer once from memory (later sweeps of the same layer row
//      hit L2/L3): L·V·b bytes, L·V exps, (L−1)·V logs.
//   select) Q per row, or one Q for the batch (a reduction over [L−1, R]).
//   C) final and premature layers again: head test z_N − max z_N ≥ log α, F = lp_N − lp_Q on
//      the head, −inf elsewhere; argmax of F (ties → lowest id). Reads 2·V·b bytes; writes
//      R·V·4 bytes of F only when the caller asks for the contrast logits.
#include <vector>

#include "divergence_phase.h"

namespace lck {
namespace {

struct ContrastKernel {
  const LayerLogits& z;
  const ContrastOptions& opt;
  const ContrastOutputs& out;

  template <typename T, typename A>
  void operator()() const {
    const int64_t L = z.L, R = z.R, V = z.V;
    const int nt = resolve_threads(opt.num_threads);
    A* div = static_cast<A*>(out.divergence);
    PhaseA<A> a = divergence_phase<T, A>(z, opt.divergence, nullptr, nt, div, out.status);
    select_premature(div, L - 1, R, nullptr, opt.batch_select, out.premature);

    constexpr bool convert = !std::is_same_v<T, A>;
    const A log_alpha = A(opt.log_alpha), neg_inf = -std::numeric_limits<A>::infinity();
#pragma omp parallel num_threads(nt)
    {
      std::vector<A> zN_buf(convert ? V : 0), zQ_buf(convert ? V : 0), F_buf(out.logits ? 0 : V);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < R; ++r) {
        const int64_t q = out.premature[r];
        const A* zN = load_row<T, A>(z, L - 1, r, zN_buf.data());
        const A* zQ = load_row<T, A>(z, q, r, zQ_buf.data());
        A* F = out.logits ? static_cast<A*>(out.logits) + r * V : F_buf.data();
        const A lse_N = a.lse[(L - 1) * R + r], lse_Q = a.lse[q * R + r], m = a.max_final[r];
#pragma omp simd
        for (int64_t v = 0; v < V; ++v) {
          const A zn = zN[v];
          const bool head = (zn - m >= log_alpha) & (zn > neg_inf);
          F[v] = head ? (zn - lse_N) - (zQ[v] - lse_Q) : neg_inf;
        }
        out.tokens[r] = first_argmax(F, V);
      }
    }
  }
};

}  // namespace

void contrast_forward(const LayerLogits& z, const ContrastOptions& opt, const ContrastOutputs& out) {
  dispatch_dtype(z.dtype, ContrastKernel{z, opt, out});
}

}  // namespace lck
