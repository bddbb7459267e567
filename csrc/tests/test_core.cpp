// test_core.cpp — C++ unit tests of the torch-free core against a naive double-precision
// implementation written here (run by ctest). The Python tests cover the full API; these
// check the core alone: exp/log accuracy, conversions, decode, loss and gradient.
#include <cmath>
#include <cstdio>
#include <vector>

#include "lc_core.h"
#include "lc_math.h"

using namespace lck;

static int failures = 0;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
      std::printf(__VA_ARGS__);                           \
      std::printf("\n");                                  \
      ++failures;                                         \
    }                                                     \
  } while (0)

struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  double uniform() {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    return double(s >> 11) * (1.0 / 9007199254740992.0);
  }
  double normal() { return std::sqrt(-2 * std::log(uniform() + 1e-300)) * std::cos(6.283185307179586 * uniform()); }
};

static void test_math() {
  double worst_exp = 0, worst_log = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
    double rel = std::fabs(double(exp_f(x)) - std::exp(double(x))) / std::exp(double(x));
    worst_exp = std::fmax(worst_exp, rel);
  }
  for (float x = 1e-37f; x < 1e30f; x *= 1.37f) {
    double ref = std::log(double(x));
    double err = std::fabs(double(log_f(x)) - ref) / std::fmax(1.0, std::fabs(ref));
    worst_log = std::fmax(worst_log, err);
  }
  CHECK(worst_exp < 4e-7, "exp_f relative error %g", worst_exp);
  CHECK(worst_log < 4e-7, "log_f error %g", worst_log);
  CHECK(exp_f(-kInf) == 0.0f, "exp_f(-inf) must be 0");
  CHECK(log_f(0.0f) == -kInf, "log_f(0) must be -inf");
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 3.14159f})
    CHECK(fp16_to_float(float_to_fp16(f)) == f || std::fabs(fp16_to_float(float_to_fp16(f)) - f) < 1e-3f * std::fabs(f),
          "fp16 round trip of %g", f);
  CHECK(bf16_to_float(float_to_bf16(1.5f)) == 1.5f, "bf16 round trip");
}

// Naive double reference of one row: divergences of candidates vs final, Q, token.
struct RowRef { std::vector<double> div; int64_t q; int64_t token; };

static std::vector<double> log_softmax(const float* z, int64_t V) {
  double m = -INFINITY, s = 0;
  for (int64_t v = 0; v < V; ++v) m = std::fmax(m, z[v]);
  for (int64_t v = 0; v < V; ++v) s += std::exp(z[v] - m);
  std::vector<double> lp(V);
  for (int64_t v = 0; v < V; ++v) lp[v] = z[v] - m - std::log(s);
  return lp;
}

static RowRef naive_row(const std::vector<float>& z, int64_t L, int64_t R, int64_t V, int64_t r, double alpha) {
  auto lpN = log_softmax(&z[((L - 1) * R + r) * V], V);
  RowRef out{std::vector<double>(L - 1), 0, 0};
  for (int64_t j = 0; j < L - 1; ++j) {
    auto lpj = log_softmax(&z[(j * R + r) * V], V);
    double d = 0;
    for (int64_t v = 0; v < V; ++v) {
      double p = std::exp(lpN[v]), q = std::exp(lpj[v]), lm = std::log(0.5 * (p + q));
      if (p > 0) d += 0.5 * p * (lpN[v] - lm);
      if (q > 0) d += 0.5 * q * (lpj[v] - lm);
    }
    out.div[j] = d;
    if (d > out.div[out.q]) out.q = j;
  }
  auto lpQ = log_softmax(&z[(out.q * R + r) * V], V);
  double mx = -INFINITY, best = -INFINITY;
  for (int64_t v = 0; v < V; ++v) mx = std::fmax(mx, lpN[v]);
  for (int64_t v = 0; v < V; ++v)
    if (lpN[v] >= mx + std::log(alpha) && lpN[v] - lpQ[v] > best) {
      best = lpN[v] - lpQ[v];
      out.token = v;
    }
  return out;
}

static void test_decode_and_loss() {
  Rng rng;
  const int64_t L = 5, R = 3, V = 4099;
  std::vector<float> z(L * R * V);
  for (auto& x : z) x = float(3.0 * rng.normal());
  const double alpha = 0.1;
  std::vector<int64_t> tokens(R), q(R);
  std::vector<float> div((L - 1) * R);
  std::vector<int32_t> status(R);
  LayerLogits in{z.data(), DType::F32, L, R, V, R * V, V};
  for (int threads : {1, 2}) {
    contrast_forward(in, {std::log(alpha), Divergence::JSD, false, threads},
                     {tokens.data(), q.data(), div.data(), nullptr, status.data()});
    for (int64_t r = 0; r < R; ++r) {
      RowRef ref = naive_row(z, L, R, V, r, alpha);
      CHECK(status[r] == 0, "status %d", status[r]);
      CHECK(q[r] == ref.q, "row %ld premature %ld vs %ld", long(r), long(q[r]), long(ref.q));
      CHECK(tokens[r] == ref.token, "row %ld token %ld vs %ld", long(r), long(tokens[r]), long(ref.token));
      for (int64_t j = 0; j < L - 1; ++j)
        CHECK(std::fabs(div[j * R + r] - ref.div[j]) <= 1e-4 * ref.div[j] + 1e-6, "div %g vs %g", div[j * R + r], ref.div[j]);
    }
  }
  // Ungated loss (gate = never) is cross-entropy on the final layer; its gradient is p - onehot.
  std::vector<int64_t> targets = {7, -100, 4000};
  std::vector<uint8_t> none(V, 0);
  std::vector<float> loss(R), grad(R * V);
  std::vector<uint8_t> gate(R);
  loss_forward(in, {targets.data(), none.data(), none.data()},
               {std::log(alpha), Divergence::JSD, false, Gate::NEVER, 10, 1.0, 1.0, -100, 2},
               {loss.data(), q.data(), gate.data(), div.data(), grad.data(), status.data()});
  for (int64_t r : {0, 2}) {
    auto lp = log_softmax(&z[((L - 1) * R + r) * V], V);
    CHECK(std::fabs(loss[r] + lp[targets[r]]) < 1e-4, "CE loss %g vs %g", loss[r], -lp[targets[r]]);
    double worst = 0;
    for (int64_t v = 0; v < V; ++v)
      worst = std::fmax(worst, std::fabs(grad[r * V + v] - (std::exp(lp[v]) - (v == targets[r]))));
    CHECK(worst < 1e-6, "CE grad error %g", worst);
  }
  CHECK(loss[1] == 0.0f && q[1] == -1 && grad[V + 5] == 0.0f, "ignored row must be zero");
  // A NaN in layer 2 of row 1 is reported with its layer.
  z[(2 * R + 1) * V + 11] = NAN;
  contrast_forward(in, {std::log(alpha), Divergence::JSD, false, 2}, {tokens.data(), q.data(), div.data(), nullptr, status.data()});
  CHECK(status[0] == 0 && status[1] == NONFINITE * kStatusStride + 2, "NaN status %d", status[1]);
}

int main() {
  test_math();
  test_decode_and_loss();
  if (failures) {
    std::printf("%d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_core: all passed\n");
  return 0;
}
