// Launchers of kernels/loss.cu: Keras's categorical cross-entropy of float32 [rows, cols]
// predictions against target distributions in device memory, and its binary cross-entropy of n
// predictions against targets in [0, 1], from probabilities (with Keras's normalisation and
// clipping) or from logits, as ops::categorical_crossentropy and ops::binary_crossentropy
// compute them. Weights (nullptr: each 1) scale the losses, which are still divided by their
// count (Keras's "sum_over_batch_size").
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// loss[0] = sum_r w_r l_r / rows, with each row's loss l_r, which row_losses [rows] receives on
// the way; pred and target [rows, cols], rows and cols > 0; row_weights [rows] or nullptr.
void categorical_crossentropy_forward(const float* pred, const float* target, const float* row_weights,
                                      float* row_losses, float* loss, std::int64_t rows, std::int64_t cols,
                                      bool from_logits, void* stream);
// dpred = dloss times the gradient of the loss with respect to pred; dpred [rows, cols].
void categorical_crossentropy_backward(const float* pred, const float* target, const float* row_weights,
                                       float* dpred, std::int64_t rows, std::int64_t cols, bool from_logits,
                                       float dloss, void* stream);

// loss[0] = sum_i w_(i / elements_per_weight) l_i / n, with the n elements' losses l_i, which
// element_losses [n] receives on the way; weights [n / elements_per_weight] or nullptr.
void binary_crossentropy_forward(const float* pred, const float* target, const float* weights,
                                 std::int64_t elements_per_weight, float* element_losses, float* loss, std::int64_t n,
                                 bool from_logits, void* stream);
// dpred [n] = dloss times the gradient of the loss with respect to pred.
void binary_crossentropy_backward(const float* pred, const float* target, const float* weights,
                                  std::int64_t elements_per_weight, float* dpred, std::int64_t n, bool from_logits,
                                  float dloss, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
