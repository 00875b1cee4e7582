// attnkit_demo: a small model trained end to end with the ops and their gradients, on the CPU.
//
// Each example is a sequence of 12 tokens from a vocabulary of 40; its label is 1 when the
// "marker" token 7 occurs in it. The model is
//   Embedding(40, 16) -> additive tanh-softmax attention pooling -> Dense(2) -> softmax
// trained with categorical cross-entropy and plain SGD. Attention should learn to look at the
// marker: the demo prints the loss, the accuracy on fresh examples, and the attention weights of
// one test sequence.
#include <attnkit/attnkit.h>

#include <cstdio>
#include <vector>

using namespace attnkit;

namespace {

constexpr std::int64_t kVocabulary = 40, kSteps = 12, kFeatures = 16, kMarker = 7;

struct Batch {
  Tensor ids;     // [N, kSteps] i32
  Tensor onehot;  // [N, 2] f32
  std::vector<int> labels;
};

// Half the sequences get the marker at a random place; the others never contain it.
Batch make_batch(std::int64_t n, Generator& gen) {
  Batch batch;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n * kSteps));
  std::vector<float> onehot(static_cast<std::size_t>(n * 2), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(gen.uniform_int(2));
    for (std::int64_t t = 0; t < kSteps; ++t) {
      std::int32_t token;
      do token = static_cast<std::int32_t>(gen.uniform_int(kVocabulary)); while (token == kMarker);
      ids[static_cast<std::size_t>(i * kSteps + t)] = token;
    }
    if (label == 1) ids[static_cast<std::size_t>(i * kSteps + static_cast<std::int64_t>(gen.uniform_int(kSteps)))] = kMarker;
    onehot[static_cast<std::size_t>(i * 2 + label)] = 1.0f;
    batch.labels.push_back(label);
  }
  batch.ids = Tensor::from_vector(ids, {n, kSteps});
  batch.onehot = Tensor::from_vector(onehot, {n, 2});
  return batch;
}

struct Weights {
  Tensor table, attention_w, attention_b, dense_w, dense_b;
};

struct Forward {
  Tensor embedded, weights, pooled, logits;
};

Forward forward(const Weights& m, const Tensor& ids) {
  Forward f;
  f.embedded = ops::embedding(ids, m.table);  // [N, T, F]
  ops::AdditiveAttentionResult attention = ops::additive_attention(f.embedded, m.attention_w, m.attention_b);
  f.weights = attention.weights;              // [N, T]
  f.pooled = attention.y;                     // [N, F]
  f.logits = ops::linear(f.pooled, m.dense_w, m.dense_b);  // [N, 2]
  return f;
}

void sgd_step(Tensor& parameter, const Tensor& gradient, float learning_rate) {
  float* p = parameter.data<float>();
  const float* g = gradient.data<float>();
  for (std::int64_t i = 0; i < parameter.numel(); ++i) p[i] -= learning_rate * g[i];
}

double accuracy(const Weights& m, const Batch& batch) {
  const std::vector<float> logits = forward(m, batch.ids).logits.to_vector<float>();
  int correct = 0;
  for (std::size_t i = 0; i < batch.labels.size(); ++i)
    correct += (logits[2 * i + 1] > logits[2 * i]) == (batch.labels[i] == 1);
  return double(correct) / double(batch.labels.size());
}

}  // namespace

int main() {
  Generator gen(2024);
  Weights m;
  m.table = Tensor::uniform({kVocabulary, kFeatures}, -0.05, 0.05, gen);
  m.attention_w = Tensor::uniform({kFeatures}, -0.5, 0.5, gen);
  m.attention_b = Tensor::zeros({kSteps});
  m.dense_w = Tensor::uniform({kFeatures, 2}, -0.5, 0.5, gen);
  m.dense_b = Tensor::zeros({2});

  std::printf("attnkit %s demo: Embedding -> additive attention -> Dense(2), SGD on the CPU\n",
              ATTNKIT_VERSION_STRING);
  const float learning_rate = 1.0f;
  for (int epoch = 1; epoch <= 8; ++epoch) {
    double loss_sum = 0;
    const int steps = 50;
    for (int step = 0; step < steps; ++step) {
      const Batch batch = make_batch(32, gen);
      const Forward f = forward(m, batch.ids);
      loss_sum += ops::categorical_crossentropy(f.logits, batch.onehot, true).item();
      // Backward, from the loss to the embedding table.
      const Tensor dlogits = ops::categorical_crossentropy_backward(f.logits, batch.onehot, true);
      const ops::LinearGrads dense = ops::linear_backward(f.pooled, m.dense_w, dlogits);
      const ops::AdditiveAttentionGrads attention = ops::additive_attention_backward(
          f.embedded, m.attention_w, m.attention_b, f.weights, dense.dx);
      const Tensor dtable = ops::embedding_backward(batch.ids, attention.dx, kVocabulary);
      sgd_step(m.dense_w, dense.dweight, learning_rate);
      sgd_step(m.dense_b, dense.dbias, learning_rate);
      sgd_step(m.attention_w, attention.dw, learning_rate);
      sgd_step(m.attention_b, attention.db, learning_rate);
      sgd_step(m.table, dtable, learning_rate);
    }
    std::printf("epoch %d: loss %.4f\n", epoch, loss_sum / steps);
  }

  const Batch test = make_batch(1000, gen);
  std::printf("accuracy on 1000 fresh sequences: %.3f\n", accuracy(m, test));
  for (std::size_t i = 0; i < test.labels.size(); ++i) {
    if (test.labels[i] != 1) continue;
    const Tensor ids = test.ids.slice(static_cast<std::int64_t>(i), static_cast<std::int64_t>(i) + 1);
    const std::vector<std::int32_t> tokens = ids.to_vector<std::int32_t>();
    const std::vector<float> weights = forward(m, ids).weights.to_vector<float>();
    std::printf("attention over a sequence with the marker %lld:\n", static_cast<long long>(kMarker));
    for (std::int64_t t = 0; t < kSteps; ++t)
      std::printf("  token %2d  weight %.3f %s\n", tokens[t], weights[t], tokens[t] == kMarker ? "<- marker" : "");
    break;
  }
  return 0;
}
