// lc_math.h — the small math layer of the CPU core: branch-free exp/log the compiler can
// vectorise, bf16/fp16 -> float conversion, and blocked reductions with a fixed order.
//
// Why custom exp/log: std::exp/std::log are calls into libm that GCC does not vectorise without
// -ffast-math (which would also break NaN/inf handling we rely on). The Cephes-style polynomials
// below are branch-free (selects only), so `#pragma omp simd` loops turn into AVX2/AVX-512 code;
// they are accurate to ~1-2 ulp on the range we use. float64 uses std::exp/std::log (gradcheck).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace lck {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr double kLn2 = 0.693147180559945309417232121458;
// Sums over the vocabulary are taken in blocks of this many elements (a vectorised float sum
// inside a block, block partials added in double in order): accurate (SPEC §2) and bitwise
// reproducible for a given build, whatever the thread count.
constexpr int64_t kSumBlock = 2048;

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

inline float fp16_to_float(uint16_t h) {
  // IEEE half -> float, exact, including subnormals, inf and NaN.
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    float v = float(mant) * 5.9604644775390625e-8f;  // mant * 2^-24
    return (h & 0x8000) ? -v : v;
  }
  return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t float_to_bf16(float f) {
  // round to nearest even; NaN stays NaN
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline uint16_t float_to_fp16(float f) {
  uint32_t u = float_to_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t au = u & 0x7fffffffu;
  if (au > 0x7f800000u) return uint16_t(sign | 0x7e00u);            // NaN
  if (au >= 0x477ff000u) return uint16_t(sign | 0x7c00u);           // overflow -> inf
  if (au < 0x38800000u) {                                           // subnormal half or zero
    float v = bits_to_float(au) * 16777216.0f;                      // * 2^24
    uint32_t m = uint32_t(std::nearbyint(v));
    return uint16_t(sign | m);
  }
  uint32_t r = au + 0x0fffu + ((au >> 13) & 1u) - (112u << 23);    // rebias, round to nearest even
  return uint16_t(sign | (r >> 13));
}

// exp(x) for float; exactly 0 below -87.3 (so exp(-inf) = 0), +inf above 88.7, NaN stays NaN.
inline float exp_f(float x) {
  const float hi = 88.7f, lo = -87.3f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  // n = round(x / ln 2) with the 1.5 * 2^23 trick (vectorises without SSE4.1 roundps)
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t ni = int32_t(n);
  // 2^n split in two factors so n = 128 (x near 88.7) does not overflow the exponent field
  float s1 = bits_to_float(uint32_t(((ni >> 1) + 127) << 23));
  float s2 = bits_to_float(uint32_t(((ni - (ni >> 1)) + 127) << 23));
  y = y * s1 * s2;
  y = x < lo ? 0.0f : y;
  y = x > hi ? kInf : y;
  return x != x ? x : y;
}

// log(x) for float x >= FLT_MIN (normal numbers); -inf for x <= 0 (callers select away
// subnormal arguments, whose contributions are below 1e-37).
inline float log_f(float x) {
  uint32_t u = float_to_bits(x);
  int32_t e = int32_t((u >> 23) & 0xff) - 126;
  float m = bits_to_float((u & 0x007fffffu) | 0x3f000000u);  // m in [0.5, 1)
  bool small = m < 0.707106781186547524f;
  float ef = float(e) - (small ? 1.0f : 0.0f);
  m = small ? (m + m - 1.0f) : (m - 1.0f);
  float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += -2.12194440e-4f * ef;
  y += -0.5f * z;
  float r = m + y + 0.693359375f * ef;
  r = x > 0.0f ? r : -kInf;
  return x == kInf ? kInf : r;
}

inline float vexp(float x) { return exp_f(x); }
inline double vexp(double x) { return std::exp(x); }
inline float vlog(float x) { return log_f(x); }
inline double vlog(double x) { return std::log(x); }

// Smallest positive normal of each type: below it a probability's contribution is negligible
// and log_f is not defined, so terms are selected to 0.
template <typename A> constexpr A tiny() { return std::numeric_limits<A>::min(); }

}  // namespace lck
