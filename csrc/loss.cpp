// loss.cpp — the fused layer-contrast loss forward + gradient on CPU (SPEC §5).
//
// Passes over the vocabulary, per valid row (ignored rows cost one zero-fill of their gradient):
//   A) as in decode.cpp: all-layer normalisers and the candidates' divergences
//      (L·V·b bytes read, L·V exps, (L−1)·V logs);
//   select) Q per row or per batch (over the valid rows);
//   C) final layer: the key-factor gate (max of z_N over Φ, then a count above it);
//      gated rows: D = z_N − z_Q on H' = H ∪ {y}, max, exp + sum (cached), gradient
//      w·(softmax_H'(D) − onehot(y)); ungated rows: w·(p_N − onehot(y)).
//      Reads 2·V·b bytes, writes the gradient row once: V·b bytes.
// The gradient is saved in a separate [R, V] buffer of the input dtype (one layer's logits),
// never written into the caller's logits; backward only scales it (lc_kernels/backends).
#include <algorithm>
#include <vector>

#include "divergence_phase.h"

namespace lck {
namespace {

struct LossKernel {
  const LayerLogits& z;
  const LossInputs& in;
  const LossOptions& opt;
  const LossOutputs& out;

  template <typename T, typename A>
  void operator()() const {
    const int64_t L = z.L, R = z.R, V = z.V;
    const int nt = resolve_threads(opt.num_threads);
    // A target outside [0, V) that is not ignore_index only reaches here with
    // check_inputs=False; such a row is treated as ignored rather than read out of bounds.
    std::vector<uint8_t> valid(R);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t y = in.targets[r];
      valid[r] = uint8_t(y != opt.ignore_index && y >= 0 && y < V);
    }
    A* div = static_cast<A*>(out.divergence);
    PhaseA<A> a = divergence_phase<T, A>(z, opt.divergence, valid.data(), nt, div, out.status);
    select_premature(div, L - 1, R, valid.data(), opt.batch_select, out.premature);

    constexpr bool convert = !std::is_same_v<T, A>;
    const A log_alpha = A(opt.log_alpha), neg_inf = -std::numeric_limits<A>::infinity();
    const int64_t top_u = std::min<int64_t>(opt.top_u, V);
    A* loss = static_cast<A*>(out.loss);
#pragma omp parallel num_threads(nt)
    {
      std::vector<A> zN_buf(convert ? V : 0), zQ_buf(convert ? V : 0), e(V);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < R; ++r) {
        T* grad = static_cast<T*>(out.grad) + r * V;
        if (!valid[r]) {
          std::fill(reinterpret_cast<char*>(grad), reinterpret_cast<char*>(grad + V), 0);
          loss[r] = A(0);
          out.gate[r] = 0;
          out.premature[r] = -1;
          continue;
        }
        const int64_t y = in.targets[r];
        const A* zN = load_row<T, A>(z, L - 1, r, zN_buf.data());
        if (out.status[r] == OK && !(zN[y] > neg_inf)) out.status[r] = TARGET_MASKED * kStatusStride;

        bool g = opt.gate == Gate::ALWAYS;
        if (opt.gate == Gate::KEY_FACTORS) {
          A best_phi = neg_inf;
#pragma omp simd reduction(max : best_phi)
          for (int64_t v = 0; v < V; ++v) {
            const bool phi = (in.entity_mask[v] | in.relation_mask[v]) != 0;
            best_phi = (phi & (zN[v] > best_phi)) ? zN[v] : best_phi;
          }
          int64_t above = 0;
#pragma omp simd reduction(+ : above)
          for (int64_t v = 0; v < V; ++v) above += int64_t(zN[v] > best_phi);
          g = best_phi > neg_inf && above < top_u;
        }
        const A w = A(1.0 + opt.lambda_entity * in.entity_mask[y] + opt.lambda_relation * in.relation_mask[y]);
        A row_loss;
        if (g) {
          const int64_t q = out.premature[r];
          const A* zQ = load_row<T, A>(z, q, r, zQ_buf.data());
          const A m = a.max_final[r];
          A max_D = neg_inf;
#pragma omp simd reduction(max : max_D)
          for (int64_t v = 0; v < V; ++v) {
            const A zn = zN[v];
            const bool in_head = ((zn - m >= log_alpha) & (zn > neg_inf)) | (v == y);
            const A D = in_head ? zn - zQ[v] : neg_inf;
            e[v] = D;
            max_D = D > max_D ? D : max_D;
          }
          const double S = exp_and_sum(e.data(), max_D, V, e.data());  // e = exp(D − max D), 0 off H'
          row_loss = A(double(max_D) + std::log(S) - double(zN[y] - zQ[y]));
          const A scale = A(double(w) / S);
#pragma omp simd
          for (int64_t v = 0; v < V; ++v) store(grad + v, scale * e[v]);
          store(grad + y, w * (e[y] * A(1.0 / S) - A(1)));
        } else {
          const A lse_N = a.lse[(L - 1) * R + r];
          row_loss = lse_N - zN[y];
#pragma omp simd
          for (int64_t v = 0; v < V; ++v) store(grad + v, w * vexp(zN[v] - lse_N));
          store(grad + y, w * (vexp(zN[y] - lse_N) - A(1)));
        }
        loss[r] = w * row_loss;
        out.gate[r] = uint8_t(g);
      }
    }
  }
};

}  // namespace

void loss_forward(const LayerLogits& z, const LossInputs& in, const LossOptions& opt, const LossOutputs& out) {
  dispatch_dtype(z.dtype, LossKernel{z, in, opt, out});
}

}  // namespace lck
