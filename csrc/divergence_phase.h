// divergence_phase.h — phase A of both kernels: for every (active) row, the final layer's
// normaliser and max, every candidate's normaliser and divergence, the value checks; then the
// premature-layer selection. Parallel over rows, or over (row, candidate) pairs when there are
// fewer rows than threads. Each divergence is computed wholly by one thread in a fixed order,
// so the results do not depend on the thread count.
#pragma once

#include <vector>

#include "row_passes.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace lck {

inline int resolve_threads(int requested) {
#ifdef _OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

template <typename A>
struct PhaseA {
  std::vector<A> lse;    // [L, R] log-normaliser of every layer
  std::vector<A> max_final;  // [R] max of the final layer's row
};

// div: [L-1, R] output; status: [R] output; active: [R] or nullptr (all rows).
template <typename T, typename A>
PhaseA<A> divergence_phase(const LayerLogits& z, Divergence kind, const uint8_t* active, int nt, A* div, int32_t* status) {
  const int64_t L = z.L, R = z.R, V = z.V, C = L - 1;
  PhaseA<A> out{std::vector<A>(L * R, A(0)), std::vector<A>(R, A(0))};
  std::vector<int8_t> nonfinite(R * L, 0), mismatch(R * L, 0);
  constexpr bool convert = !std::is_same_v<T, A>;
  auto skip = [&](int64_t r) { return active != nullptr && !active[r]; };

  auto do_final = [&](int64_t r, A* zN_buf, A* p, A* lp) -> const A* {
    const A* zN = load_row<T, A>(z, L - 1, r, zN_buf);
    FinalRow<A> f = final_row(zN, V, p, lp);
    out.max_final[r] = f.max;
    out.lse[(L - 1) * R + r] = f.lse;
    nonfinite[r * L + L - 1] = int8_t(f.nonfinite);
    return zN;
  };
  auto do_candidate = [&](int64_t r, int64_t j, const A* zN, const A* p, const A* lp, A* zj_buf, A* e) {
    const A* zj = load_row<T, A>(z, j, r, zj_buf);
    CandidateRow<A> c = candidate_row(zj, zN, p, lp, V, kind, e);
    div[j * R + r] = c.div;
    out.lse[j * R + r] = c.lse;
    nonfinite[r * L + j] = int8_t(c.nonfinite);
    mismatch[r * L + j] = int8_t(c.mismatch);
  };

  if (R >= nt) {
    // Many rows: one thread owns a row from start to end, with its own buffers (5 x V values).
#pragma omp parallel num_threads(nt)
    {
      std::vector<A> zN_buf(convert ? V : 0), zj_buf(convert ? V : 0), p(V), lp(V), e(V);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < R; ++r) {
        if (skip(r)) {
          for (int64_t j = 0; j < C; ++j) div[j * R + r] = A(0);
          continue;
        }
        const A* zN = do_final(r, zN_buf.data(), p.data(), lp.data());
        for (int64_t j = 0; j < C; ++j) do_candidate(r, j, zN, p.data(), lp.data(), zj_buf.data(), e.data());
      }
    }
  } else {
    // Few rows (decoding with a small batch): normalise each final row once into shared
    // buffers, then spread the (row, candidate) pairs over the threads.
    std::vector<A> zN_all(convert ? R * V : 0), p_all(R * V), lp_all(R * V);
    std::vector<const A*> zN_ptr(R, nullptr);
    for (int64_t r = 0; r < R; ++r)
      if (!skip(r)) zN_ptr[r] = do_final(r, convert ? zN_all.data() + r * V : nullptr, p_all.data() + r * V, lp_all.data() + r * V);
#pragma omp parallel num_threads(nt)
    {
      std::vector<A> zj_buf(convert ? V : 0), e(V);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < R * C; ++t) {
        const int64_t r = t / C, j = t % C;
        if (skip(r)) {
          div[j * R + r] = A(0);
          continue;
        }
        do_candidate(r, j, zN_ptr[r], p_all.data() + r * V, lp_all.data() + r * V, zj_buf.data(), e.data());
      }
    }
  }
  for (int64_t r = 0; r < R; ++r)
    status[r] = skip(r) ? OK
                        : row_status(&nonfinite[r * L], &mismatch[r * L], L,
                                     !(out.max_final[r] > -std::numeric_limits<A>::infinity()) && !nonfinite[r * L + L - 1]);
  return out;
}

// Premature layer per row: argmax over candidates (ties -> lowest index), or with batch
// selection the argmax of the mean over the active rows, shared by every row.
template <typename A>
void select_premature(const A* div, int64_t C, int64_t R, const uint8_t* active, bool batch, int64_t* q) {
  if (!batch) {
    for (int64_t r = 0; r < R; ++r) {
      int64_t best = 0;
      for (int64_t j = 1; j < C; ++j)
        if (div[j * R + r] > div[best * R + r]) best = j;
      q[r] = best;
    }
    return;
  }
  int64_t best = 0;
  double best_mean = 0;
  for (int64_t j = 0; j < C; ++j) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < R; ++r)
      if (active == nullptr || active[r]) {
        sum += double(div[j * R + r]);
        ++n;
      }
    const double mean = n ? sum / double(n) : 0.0;
    if (j == 0 || mean > best_mean) {
      best = j;
      best_mean = mean;
    }
  }
  for (int64_t r = 0; r < R; ++r) q[r] = best;
}

// Calls f.template operator()<T, A>() for the input dtype.
template <typename F>
void dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: f.template operator()<float, float>(); break;
    case DType::F64: f.template operator()<double, double>(); break;
    case DType::BF16: f.template operator()<BF16, float>(); break;
    case DType::F16: f.template operator()<F16, float>(); break;
  }
}

}  // namespace lck
