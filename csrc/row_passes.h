// row_passes.h — the per-row sweeps over the vocabulary shared by the decode and loss kernels.
//
// T is the input dtype's storage (float, double, or uint16_t bits of bf16/fp16), A the
// accumulation type (float, or double for double input). Every function handles one row of one
// or two layers; parallelism over rows/candidates lives in the callers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "lc_core.h"
#include "lc_math.h"

namespace lck {

struct BF16 { uint16_t bits; };
struct F16 { uint16_t bits; };

inline float to_acc(BF16 x) { return bf16_to_float(x.bits); }
inline float to_acc(F16 x) { return fp16_to_float(x.bits); }
inline float to_acc(float x) { return x; }
inline double to_acc(double x) { return x; }

inline void store(float* p, float v) { *p = v; }
inline void store(double* p, double v) { *p = v; }
inline void store(BF16* p, float v) { p->bits = float_to_bf16(v); }
inline void store(F16* p, float v) { p->bits = float_to_fp16(v); }

// Row r of layer l as A values: the input itself when T == A, else converted into `buf`.
template <typename T, typename A>
const A* load_row(const LayerLogits& z, int64_t l, int64_t r, A* buf) {
  const T* src = static_cast<const T*>(z.data) + l * z.stride_l + r * z.stride_r;
  if constexpr (std::is_same_v<T, A>) {
    return src;
  } else {
    for (int64_t v = 0; v < z.V; ++v) buf[v] = to_acc(src[v]);
    return buf;
  }
}

// Pass 1a: max of x (NaN ignored), plus flags: a NaN/+inf seen; an -inf position differing
// from the final layer's row xN (pass xN = x for the final layer itself).
template <typename A>
A max_and_checks(const A* x, const A* xN, int64_t V, int& nonfinite, int& mismatch) {
  A m = -std::numeric_limits<A>::infinity();
  int bad = 0, mis = 0;
  const A inf = std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m) reduction(| : bad, mis)
  for (int64_t v = 0; v < V; ++v) {
    A xv = x[v];
    m = xv > m ? xv : m;
    bad |= int(xv != xv) | int(xv == inf);
    mis |= int((xv == -inf) != (xN[v] == -inf));
  }
  nonfinite = bad;
  mismatch = mis;
  return m;
}

// Pass 1b: e[v] = exp(x[v] - m) for every v, returning sum e in double (blocked, fixed order).
template <typename A>
double exp_and_sum(const A* x, A m, int64_t V, A* e) {
  double total = 0.0;
  for (int64_t b = 0; b < V; b += kSumBlock) {
    const int64_t n = std::min(kSumBlock, V - b);
    const A* xb = x + b;
    A* eb = e + b;
    A s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t v = 0; v < n; ++v) {
      A ev = vexp(xb[v] - m);
      eb[v] = ev;
      s += ev;
    }
    total += double(s);
  }
  return total;
}

// The final layer's row, normalised once: p[v] = p_N(v), lp[v] = lp_N(v). Returns its max.
template <typename A>
struct FinalRow {
  A max = 0, lse = 0;
  int nonfinite = 0;
};

template <typename A>
FinalRow<A> final_row(const A* zN, int64_t V, A* p, A* lp) {
  FinalRow<A> f;
  int mis = 0;
  f.max = max_and_checks(zN, zN, V, f.nonfinite, mis);
  if (f.nonfinite || !(f.max > -std::numeric_limits<A>::infinity())) return f;
  const double S = exp_and_sum(zN, f.max, V, p);
  const double lse = double(f.max) + std::log(S);
  f.lse = A(lse);
  const A inv = A(1.0 / S), lse_a = A(lse);
#pragma omp simd
  for (int64_t v = 0; v < V; ++v) {
    p[v] *= inv;
    lp[v] = zN[v] - lse_a;
  }
  return f;
}

// Pass 2 for candidate j: max, exp into e, then the divergence against the final row (p, lp).
// jsd : ½ Σ [p (lp − lm) + q (lq − lm)], lm = log(p + q) − log 2   (one log per element)
// kl  : Σ p (lp − lq)                                              (no transcendental)
// dola: ½ Σ m [(lm − lp) + (lm − lq)] / V, m = (p + q) / 2          (one log per element)
// Terms whose probability is 0 (masked, or underflowed below the smallest normal) are 0.
template <typename A>
struct CandidateRow {
  A div = 0, lse = 0;
  int nonfinite = 0, mismatch = 0;
};

template <typename A>
CandidateRow<A> candidate_row(const A* zj, const A* zN, const A* p, const A* lp, int64_t V, Divergence kind, A* e) {
  CandidateRow<A> c;
  const A mj = max_and_checks(zj, zN, V, c.nonfinite, c.mismatch);
  if (c.nonfinite || c.mismatch || !(mj > -std::numeric_limits<A>::infinity())) return c;
  const double S = exp_and_sum(zj, mj, V, e);
  const double lse = double(mj) + std::log(S);
  c.lse = A(lse);
  const A inv = A(1.0 / S), lse_j = A(lse), ln2 = A(kLn2), tiny_a = tiny<A>(), zero = 0;
  // Blocks of kSumBlock: a vectorised float sum inside, block partials added in double.
  double total = 0.0;
  for (int64_t b = 0; b < V; b += kSumBlock) {
    const int64_t n = std::min(kSumBlock, V - b);
    const A *pb = p + b, *lpb = lp + b, *eb = e + b, *zb = zj + b;
    A s = 0;
    if (kind == Divergence::KL) {
#pragma omp simd reduction(+ : s)
      for (int64_t v = 0; v < n; ++v) {
        const A lq = zb[v] - lse_j, pv = pb[v];
        s += pv > zero ? pv * (lpb[v] - lq) : zero;
      }
    } else if (kind == Divergence::JSD) {
#pragma omp simd reduction(+ : s)
      for (int64_t v = 0; v < n; ++v) {
        const A pv = pb[v], q = eb[v] * inv, lq = zb[v] - lse_j, sum = pv + q;
        const A lm = vlog(sum) - ln2;
        const A t = (pv > zero ? pv * (lpb[v] - lm) : zero) + (q > zero ? q * (lq - lm) : zero);
        s += sum >= tiny_a ? t : zero;
      }
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t v = 0; v < n; ++v) {
        const A pv = pb[v], q = eb[v] * inv, lq = zb[v] - lse_j, sum = pv + q;
        const A lm = vlog(sum) - ln2;
        const A t = A(0.5) * sum * ((lm - lpb[v]) + (lm - lq));
        s += sum >= tiny_a ? t : zero;
      }
    }
    total += double(s);
  }
  if (kind == Divergence::JSD) total *= 0.5;
  if (kind == Divergence::DOLA) total *= 0.5 / double(V);
  c.div = A(total);
  return c;
}

// First index of the maximum of x over [0, V) (ties -> lowest index; 0 if x is all NaN).
template <typename A>
int64_t first_argmax(const A* x, int64_t V) {
  A m = -std::numeric_limits<A>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t v = 0; v < V; ++v) m = x[v] > m ? x[v] : m;
  for (int64_t v = 0; v < V; ++v)
    if (x[v] == m) return v;
  return 0;
}

// Status of a row from its per-layer flags (SPEC §2 order; see validation.py).
inline int32_t row_status(const int8_t* nonfinite, const int8_t* mismatch, int64_t L, bool final_all_masked) {
  for (int64_t l = 0; l < L; ++l)
    if (nonfinite[l]) return NONFINITE * kStatusStride + int32_t(l);
  if (final_all_masked) return FINAL_ALL_MASKED * kStatusStride;
  for (int64_t l = 0; l < L; ++l)
    if (mismatch[l]) return MASK_MISMATCH * kStatusStride + int32_t(l);
  return OK;
}

}  // namespace lck
