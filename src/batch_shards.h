// Internal: what the shards of a batch share, and what each keeps to itself, when a model runs
// one batch as several shards of rows at once (Model::run_batch on the CPU).
//
// A batch of 32 reviews is too little work to share between threads op by op: each op's share
// is a few microseconds, and the data crosses from core to core between ops. Split into shards
// of rows, each thread runs the whole graph forward and backward on its rows alone, and the
// shards' parameter gradients are added at the end, in shard order (so the sum is the same on
// every run).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "attnkit/layer.h"

namespace attnkit {

// The random draws of a batch (CallContext::reserve): draw k of every shard is the batch's draw k.
class ShardDraws {
 public:
  explicit ShardDraws(Generator& generator) : generator_(generator) {}
  std::uint64_t reserve(std::size_t draw, std::uint64_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draw == offsets_.size()) offsets_.push_back(generator_.reserve(count));
    return offsets_.at(draw);
  }

 private:
  Generator& generator_;
  std::mutex mutex_;
  std::vector<std::uint64_t> offsets_;
};

// While one exists on a thread, Layer::accumulate on that thread adds gradients into `grads`
// instead of the parameters' own.
using ShardGradients = std::map<Parameter*, Tensor>;
class GradientSink {
 public:
  explicit GradientSink(ShardGradients& grads);
  ~GradientSink();
  GradientSink(const GradientSink&) = delete;
  GradientSink& operator=(const GradientSink&) = delete;

 private:
  ShardGradients* previous_;
};

}  // namespace attnkit
