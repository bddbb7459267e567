// lc_core.h — the torch-free C++ core of lc_kernels (SPEC §2–§5).
//
// Inputs are raw pointers plus shapes and strides: z is [L, R, V] with the vocabulary contiguous
// (element (l, r, v) at z[l * stride_l + r * stride_r + v]), in one of four dtypes; layer L-1 is
// the final layer. Accumulation is float for float/bf16/fp16 input and double for double input;
// "A" below names that accumulation type. Outputs are caller-allocated.
#pragma once

#include <cstdint>

namespace lck {

enum class DType : int { F32 = 0, F64 = 1, BF16 = 2, F16 = 3 };
enum class Divergence : int { JSD = 0, KL = 1, DOLA = 2 };
enum class Gate : int { KEY_FACTORS = 0, ALWAYS = 1, NEVER = 2 };

// Per-row status codes, identical to lc_kernels/validation.py: code * kStatusStride + layer.
constexpr int32_t kStatusStride = 1 << 16;
enum StatusCode : int32_t { OK = 0, NONFINITE = 1, FINAL_ALL_MASKED = 2, MASK_MISMATCH = 3, TARGET_MASKED = 4 };

struct LayerLogits {
  const void* data;
  DType dtype;
  int64_t L, R, V;
  int64_t stride_l, stride_r;  // in elements
};

struct ContrastOutputs {
  int64_t* tokens;      // [R]
  int64_t* premature;   // [R]
  void* divergence;     // [L-1, R], A
  void* logits;         // [R, V], A; nullptr: not written
  int32_t* status;      // [R]
};

struct ContrastOptions {
  double log_alpha;  // log α, -inf for α = 0
  Divergence divergence;
  bool batch_select;
  int num_threads;   // <= 0: OpenMP's default
};

// Decode / contrast-logits forward. Passes over the vocabulary, per row:
//   A) every layer: max (+ non-finite / mask checks), exp into a row buffer and its sum
//      (one exp per element); every candidate: the divergence against the final layer
//      (one log per candidate element for jsd/dola, none for kl);
//   C) the final and premature layers again: head threshold, contrast F, its argmax.
// Reads: (L + 2) x the row's logits (the repeated reads of a layer hit L2/L3);
// writes: F only when asked, O(L) numbers per row otherwise.
void contrast_forward(const LayerLogits& z, const ContrastOptions& opt, const ContrastOutputs& out);

struct LossInputs {
  const int64_t* targets;       // [R]
  const uint8_t* entity_mask;   // [V]
  const uint8_t* relation_mask; // [V]
};

struct LossOptions {
  double log_alpha;
  Divergence divergence;
  bool batch_select;
  Gate gate;
  int64_t top_u;
  double lambda_entity, lambda_relation;
  int64_t ignore_index;
  int num_threads;
};

struct LossOutputs {
  void* loss;           // [R], A: w * l (0 on ignored rows)
  int64_t* premature;   // [R], -1 on ignored rows
  uint8_t* gate;        // [R]
  void* divergence;     // [L-1, R], A (0 on ignored rows)
  void* grad;           // [R, V], input dtype: d(w * l)/d z_N (the premature layer gets -grad)
  int32_t* status;      // [R]
};

// Loss forward with the gradient of every row's weighted loss w.r.t. the final layer, written
// in the same sweep (SPEC §5). Passes: A as above (valid rows only); C) the final layer (gate:
// max over Φ and a count), then the final and premature layers for D = z_N - z_Q (max, exp-sum,
// gradient write). Reads (L + 3) x a row's logits, writes one row of gradient.
void loss_forward(const LayerLogits& z, const LossInputs& in, const LossOptions& opt, const LossOutputs& out);

}  // namespace lck
