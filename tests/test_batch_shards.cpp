// A training batch on the CPU runs as two shards of rows (Model::run_batch, batch_shards.h).
// References: the whole batch's gradient through the public forward() and backward(), taken by
// one step of plain SGD; the whole batch's dropout mask; and training with one thread, where the
// shards run in turn.
#include <gtest/gtest.h>

#include <memory>

#include "attnkit/attnkit.h"
#include "attnkit/threads.h"
#include "batch_shards.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// Token ids [n, 9] below 40 and one-hot labels of 2 classes that follow the first token.
struct Reviews {
  Tensor ids, labels;
  Reviews(std::int64_t n, std::uint64_t seed) {
    Generator gen(seed);
    ids = random_ids({n, 9}, 40, gen);
    std::vector<float> onehot;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool positive = ids.data<std::int32_t>()[i * 9] % 2 == 0;
      onehot.insert(onehot.end(), {positive ? 1.0f : 0.0f, positive ? 0.0f : 1.0f});
    }
    labels = Tensor::from_vector(onehot, {n, 2});
  }
};

// An embedding, an optional dropout, a bidirectional LSTM over the steps, gating attention, and a
// softmax over 2 classes: a gradient reaches every kind of parameter the zoo has.
std::unique_ptr<Model> small_model(double dropout_rate) {
  using namespace layers;
  SymbolicTensor ids = Input({9}, DType::i32);
  SymbolicTensor h = Embedding(40, 6)(ids);
  if (dropout_rate > 0) h = Dropout(dropout_rate)(h);
  RecurrentOptions sequences;
  sequences.return_sequences(true);
  h = GatingAttention()(Bidirectional(LSTM(5, sequences))(h));
  auto model = std::make_unique<Model>(ids, Dense(2, "softmax")(Flatten()(h)), "shards", 3);
  return model;
}

// Restores the thread count a test changes.
struct ThreadCount {
  int before = num_threads();
  ~ThreadCount() { set_num_threads(before); }
};

TEST(BatchShards, AStepIsTheWholeBatchGradient) {
  // 27 rows: shards of 12 and 15 (the second starts at a multiple of 4). Weighted samples, so
  // that the shards' shares of the weighted mean are checked too.
  const Reviews data(27, 1);
  Generator gen(2);
  const Tensor weights = Tensor::uniform({27}, 0.2, 2.0, gen);
  auto reference = small_model(0), sharded = small_model(0);

  // The whole batch through the public forward and backward: the gradient of the weighted loss.
  CallContext context;
  context.training = true;
  const Tensor pred = reference->forward({data.ids}, context)[0];
  reference->backward({ops::categorical_crossentropy_backward(pred, data.labels, false, 1.0, weights)});

  // One step of SGD with learning rate 1 moves each weight by minus its gradient.
  sharded->compile(CompileOptions().optimizer(SGD(1.0)));
  const Tensors before = sharded->get_weights();
  sharded->fit(data.ids, data.labels,
               FitOptions().batch_size(27).shuffle(false).verbose(0).sample_weight(weights));
  const Tensors after = sharded->get_weights();
  const auto parameters = reference->named_parameters();
  ASSERT_EQ(parameters.size(), after.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    const std::vector<double> b = values(before[i]), a = values(after[i]);
    std::vector<double> moved(b.size());
    for (std::size_t j = 0; j < b.size(); ++j) moved[j] = b[j] - a[j];
    ASSERT_TRUE(parameters[i].second->grad.defined()) << parameters[i].first;
    EXPECT_TRUE(all_close(moved, values(parameters[i].second->grad), 1e-6, 1e-4)) << parameters[i].first;
  }
}

// Dropout, and the attention dropout of MultiHeadAttention (self-attention), in shards of a batch
// give what the whole batch gives.
TEST(BatchShards, DropoutShardsDrawTheWholeBatchMask) {
  Generator gen(3);
  const Tensor x = Tensor::uniform({20, 3, 5}, -1.0, 1.0, gen);
  for (const bool attention : {false, true}) {
    LayerRef layer = attention ? layers::MultiHeadAttention(2, 3, layers::MultiHeadAttentionOptions().dropout(0.4))
                               : layers::Dropout(0.4);
    const auto inputs = [&](const Tensor& rows) { return attention ? Tensors{rows, rows} : Tensors{rows}; };
    layer->build(attention ? std::vector<Shape>{{3, 5}, {3, 5}} : std::vector<Shape>{{3, 5}}, gen);

    Generator whole_generator(11), shard_generator(11);
    CallContext whole;
    whole.training = true;
    whole.generator = &whole_generator;
    std::any cache;
    const Tensor expected = layer->forward(inputs(x), whole, cache)[0];

    // Rows [0, 8) and [8, 20), the second shard first: the order the threads reach a draw in
    // must not matter.
    ShardDraws draws(shard_generator);
    Tensors parts(2);
    for (const int shard : {1, 0}) {
      CallContext context;
      context.training = true;
      context.generator = &shard_generator;
      context.shard_begin = shard == 0 ? 0 : 8;
      context.batch_rows = 20;
      context.draws = &draws;
      parts[shard] = layer->forward(inputs(x.slice(context.shard_begin, shard == 0 ? 8 : 20)), context, cache)[0];
    }
    EXPECT_TRUE(all_close(ops::concat(parts, 0), expected, attention ? 1e-6 : 0)) << layer->type();
    EXPECT_EQ(shard_generator.offset(), whole_generator.offset()) << layer->type();
  }
}

TEST(BatchShards, TrainingGivesTheSameWeightsWithAnyNumberOfThreads) {
  const ThreadCount restore;
  const Reviews data(70, 4);
  std::vector<Tensors> weights;
  std::vector<std::vector<double>> losses;
  for (const int threads : {1, 2, 3}) {
    set_num_threads(threads);
    auto model = small_model(0.3);
    model->compile(CompileOptions().optimizer(Adam(0.01)));
    const History h =
        model->fit(data.ids, data.labels, FitOptions().epochs(2).batch_size(20).validation_split(0.2).verbose(0).seed(6));
    weights.push_back(model->get_weights());
    losses.push_back(h.history.at("loss"));
  }
  for (std::size_t run = 1; run < weights.size(); ++run) {
    EXPECT_EQ(losses[run], losses[0]) << "run " << run;
    for (std::size_t i = 0; i < weights[0].size(); ++i)
      EXPECT_TRUE(all_close(weights[run][i], weights[0][i], 0)) << "run " << run << " weight " << i;
  }
}

}  // namespace
}  // namespace attnkit
