// The sentiment models of MODELS.md, layer by layer as the blog (seed 000) builds them.
#include "attnkit/zoo.h"

#include "attnkit/layers.h"

namespace attnkit::zoo {

const std::vector<ModelSpec>& models() {
  static const std::vector<ModelSpec> specs{
      {"mlp", "MLP", 4, 0.8795, false},
      {"cnn", "CNN", 4, 0.8882, false},
      {"rnn", "RNN", 4, 0.8912, false},
      {"lstm", "LSTM", 4, 0.8966, false},
      {"gru", "GRU", 4, 0.8912, false},
      {"cnn-lstm", "CNN+LSTM", 4, 0.8916, false},
      {"bilstm", "BiLSTM", 4, 0.8816, false},
      {"textcnn", "TextCNN", 30, 0.8474, true},
      {"attention", "Attention", 100, 0.8207, true},
      {"bilstm-attention", "BiLSTM+Attention", 30, 0.8236, true},
      {"bigru-attention", "BiGRU+Attention", 100, 0.8607, true},
      {"attention3", "Attention*3", 50, 0.8057, true},
  };
  return specs;
}

// The model beyond the blog: a Transformer encoder (not one of the twelve; no blog figure).
const ModelSpec& transformer_spec() {
  static const ModelSpec spec{"transformer", "Transformer", 10, 0.0, false, true};
  return spec;
}

namespace {
const std::string kTrainable = "-trainable";

bool ends_with_trainable(const std::string& name) {
  return name.size() > kTrainable.size() && name.compare(name.size() - kTrainable.size(), kTrainable.size(), kTrainable) == 0;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const ModelSpec& m : models()) names.push_back(m.name);
  for (const ModelSpec& m : models())
    if (m.frozen_embedding) names.push_back(m.name + kTrainable);
  names.push_back(transformer_spec().name);
  return names;
}

ModelSpec spec(const std::string& name) {
  if (name == transformer_spec().name) return transformer_spec();
  const bool trainable = ends_with_trainable(name);
  const std::string base = trainable ? name.substr(0, name.size() - kTrainable.size()) : name;
  for (const ModelSpec& m : models())
    if (m.name == base) {
      ModelSpec s = m;
      if (trainable && m.frozen_embedding)
        s.name = name, s.blog_name += " (trainable embedding)", s.frozen_embedding = false, s.early_stopping = true;
      return s;
    }
  std::string known;
  for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  ATTNKIT_FAIL("unknown model '", name, "' (known: ", known, ")");
}

std::unique_ptr<Model> build(const std::string& name, const ZooOptions& o) {
  using namespace layers;
  const ModelSpec s = spec(name);
  const std::string base = ends_with_trainable(name) ? name.substr(0, name.size() - kTrainable.size()) : name;
  const SymbolicTensor inputs = Input({o.sequence_length()}, DType::i32, "inputs");
  SymbolicTensor x = Embedding(o.vocabulary(), o.embedding_dim()).trainable(!s.frozen_embedding)(inputs);
  auto softmax = [&](const SymbolicTensor& t) { return Dense(o.classes(), "softmax")(t); };
  // Seed 000's Dense(32, softmax) + Multiply, on the features.
  auto gate = [&](const SymbolicTensor& t) { return GatingAttention()(t); };
  SymbolicTensor y;
  if (base == "mlp") {
    x = Flatten()(Dropout(0.25)(x));
    y = softmax(Dropout(0.25)(Dense(256, "relu")(x)));
  } else if (base == "cnn") {
    x = MaxPooling1D(2)(Conv1D(32, 3, "same", "relu")(Dropout(0.25)(x)));
    y = softmax(Dropout(0.25)(Dense(256, "relu")(Flatten()(x))));
  } else if (base == "rnn") {
    y = softmax(Dropout(0.25)(SimpleRNN(32)(Dropout(0.25)(x))));
  } else if (base == "lstm") {
    y = softmax(Dropout(0.25)(LSTM(32)(Dropout(0.25)(x))));
  } else if (base == "gru") {
    y = softmax(Dropout(0.25)(GRU(32)(Dropout(0.25)(x))));
  } else if (base == "cnn-lstm") {
    x = MaxPooling1D(2)(Conv1D(32, 3, "same", "relu")(Dropout(0.25)(x)));
    y = softmax(Dropout(0.25)(LSTM(64)(x)));
  } else if (base == "bilstm") {
    x = Dense(128, "relu")(Bidirectional(LSTM(64))(x));
    y = softmax(Dropout(0.25)(x));
  } else if (base == "textcnn") {
    std::vector<SymbolicTensor> branches;
    for (const std::int64_t k : {3, 4, 5}) branches.push_back(MaxPooling1D(2)(Conv1D(32, k, "same", "relu")(x)));
    y = softmax(Dropout(0.2)(Flatten()(Concatenate(-1)(branches))));
  } else if (base == "attention") {
    x = Flatten()(Dense(64)(gate(x)));
    y = softmax(x);
  } else if (base == "bilstm-attention") {
    x = Bidirectional(LSTM(64, RecurrentOptions().return_sequences(true)))(x);
    x = Bidirectional(LSTM(64, RecurrentOptions().return_sequences(true)))(x);
    x = Dropout(0.2)(Dense(256, "relu")(x));
    x = Dense(128, "relu")(AttentionPooling()(x));
    y = softmax(x);
  } else if (base == "bigru-attention") {
    x = Dense(64, "relu")(gate(x));
    x = Dense(16, "relu")(Bidirectional(GRU(32))(x));
    y = softmax(x);
  } else if (base == "attention3") {
    for (int i = 0; i < 3; ++i) x = Dense(o.embedding_dim(), "relu")(gate(x));
    y = softmax(Flatten()(x));
  } else if (base == "transformer") {
    // One encoder block (self-attention and a feed-forward net, each with dropout, a residual
    // and layer normalisation) over token and position embeddings; padding is masked out of
    // the attention; the steps are averaged.
    const std::int64_t width = o.embedding_dim();
    const SymbolicTensor mask = PaddingMask()(inputs);
    x = PositionEmbedding()(x);
    SymbolicTensor attended = Dropout(0.1)(MultiHeadSelfAttention(2, width)({x, mask}));
    x = LayerNormalization(1e-6)(Add()({x, attended}));
    SymbolicTensor fed = Dropout(0.1)(Dense(width)(Dense(width, "relu")(x)));
    x = LayerNormalization(1e-6)(Add()({x, fed}));
    x = Dropout(0.1)(Dense(20, "relu")(Dropout(0.1)(GlobalAveragePooling1D()(x))));
    y = softmax(x);
  }
  return std::make_unique<Model>(inputs, y, s.name, o.seed());
}

}  // namespace attnkit::zoo
