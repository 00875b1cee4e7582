// main.cpp: a BiLSTM with attention pooling learns which sequences hold the token 7.
#include <attnkit/attnkit.h>

#include <cstdio>
#include <vector>

int main() {
  using namespace attnkit;
  // 2000 sequences of 10 tokens from 1..29; label 1 (one-hot [0, 1]) when 7 occurs.
  Generator gen(1);
  std::vector<std::int32_t> ids(2000 * 10);
  std::vector<float> labels(2000 * 2, 0.0f);
  for (int i = 0; i < 2000; ++i) {
    int label = 0;
    for (int t = 0; t < 10; ++t) {
      ids[i * 10 + t] = static_cast<std::int32_t>(1 + gen.uniform_int(29));
      label |= ids[i * 10 + t] == 7;
    }
    labels[i * 2 + label] = 1.0f;
  }
  Tensor x = Tensor::from_vector(ids, {2000, 10}), y = Tensor::from_vector(labels, {2000, 2});

  SymbolicTensor tokens = Input({10}, DType::i32, "tokens");
  SymbolicTensor h = layers::Embedding(30, 16)(tokens);
  h = layers::Bidirectional(layers::LSTM(16, layers::RecurrentOptions().return_sequences(true)))(h);
  SymbolicTensor probs = layers::Dense(2, "softmax")(layers::AttentionPooling()(h));
  Model model(tokens, probs);
  model.compile(CompileOptions().optimizer(Adam(0.01)).loss("categorical_crossentropy"));
  std::printf("%s", model.summary().c_str());

  History history = model.fit(x, y, FitOptions().epochs(4).batch_size(32).validation_split(0.2));
  const double accuracy = history.history["val_accuracy"].back();
  std::printf("validation accuracy %.3f\n", accuracy);
  return accuracy > 0.9 ? 0 : 1;
}
