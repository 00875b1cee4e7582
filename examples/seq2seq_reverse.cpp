// seq2seq_reverse: seed 002's encoder-decoder with Luong (dot) attention, trained to reverse
// sequences of tokens.
//
//   encoder: ids [8] -> Embedding(12, 32) -> LSTM(64, return_sequences, return_state)
//   decoder: [start, y_0 .. y_6] -> Embedding(12, 32) -> LSTM(64, return_sequences,
//            initial_state = the encoder's final h and c)
//   DotAttention(decoder, encoder) -> Concatenate([context, decoder]) -> Dense(12, softmax)
//
// Tokens 1..10 are content, 11 starts the decoder's input. Training uses teacher forcing; the
// report gives the token accuracy on held-out sequences both with teacher forcing and decoding
// greedily (each step fed with the model's own previous prediction).
//
// Options: --samples N (default 20000), --epochs E (6), --seed S (2), --min-accuracy A (exit 1
// when the greedy token accuracy is below A).
#include <attnkit/attnkit.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace attnkit;

namespace {

constexpr std::int64_t kLength = 8, kVocabulary = 12, kStart = 11;

struct Data {
  Tensor encoder_ids, decoder_ids, targets;  // [n, 8] i32, [n, 8] i32, [n, 8, 12] one-hot
  std::vector<std::int32_t> answers;         // [n, 8]
};

Data make_data(std::int64_t n, Generator& gen) {
  Data d;
  std::vector<std::int32_t> source(static_cast<std::size_t>(n * kLength)), shifted(source.size());
  std::vector<float> onehot(source.size() * kVocabulary, 0.0f);
  d.answers.resize(source.size());
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t t = 0; t < kLength; ++t)
      source[static_cast<std::size_t>(i * kLength + t)] = static_cast<std::int32_t>(1 + gen.uniform_int(10));
    for (std::int64_t t = 0; t < kLength; ++t) {
      const std::int32_t answer = source[static_cast<std::size_t>(i * kLength + kLength - 1 - t)];
      d.answers[static_cast<std::size_t>(i * kLength + t)] = answer;
      onehot[static_cast<std::size_t>((i * kLength + t) * kVocabulary + answer)] = 1.0f;
      shifted[static_cast<std::size_t>(i * kLength + t)] =
          t == 0 ? static_cast<std::int32_t>(kStart) : d.answers[static_cast<std::size_t>(i * kLength + t - 1)];
    }
  }
  d.encoder_ids = Tensor::from_vector(source, {n, kLength});
  d.decoder_ids = Tensor::from_vector(shifted, {n, kLength});
  d.targets = Tensor::from_vector(onehot, {n, kLength, kVocabulary});
  return d;
}

// The arg-max token of every step of every sequence of the model's output [n, 8, 12].
std::vector<std::int32_t> argmax_tokens(const Tensor& probs) {
  const std::vector<float> p = probs.to_vector<float>();
  std::vector<std::int32_t> tokens(p.size() / kVocabulary);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::int32_t best = 0;
    for (std::int32_t v = 1; v < kVocabulary; ++v)
      if (p[i * kVocabulary + static_cast<std::size_t>(v)] > p[i * kVocabulary + static_cast<std::size_t>(best)]) best = v;
    tokens[i] = best;
  }
  return tokens;
}

// Decodes one step at a time: the decoder's input at step t holds the predictions of steps
// before t. The LSTM and the attention see only earlier decoder steps, so later inputs do not
// matter for step t.
std::vector<std::int32_t> greedy_decode(Model& model, const Tensor& encoder_ids) {
  const std::int64_t n = encoder_ids.size(0);
  Tensor decoder_ids = Tensor::full({n, kLength}, double(kStart), DType::i32);
  std::vector<std::int32_t> tokens;
  for (std::int64_t t = 0; t < kLength; ++t) {
    tokens = argmax_tokens(model.predict(Tensors{encoder_ids, decoder_ids}, 256)[0]);
    if (t + 1 < kLength)
      for (std::int64_t i = 0; i < n; ++i)
        decoder_ids.data<std::int32_t>()[i * kLength + t + 1] = tokens[static_cast<std::size_t>(i * kLength + t)];
  }
  return tokens;
}

double token_accuracy(const std::vector<std::int32_t>& predicted, const std::vector<std::int32_t>& answers) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) correct += predicted[i] == answers[i];
  return double(correct) / double(answers.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t samples = 20000;
  int epochs = 6;
  std::uint64_t seed = 2;
  double min_accuracy = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--samples" && has_value)
      samples = std::stoll(argv[++i]);
    else if (arg == "--epochs" && has_value)
      epochs = std::stoi(argv[++i]);
    else if (arg == "--seed" && has_value)
      seed = std::stoull(argv[++i]);
    else if (arg == "--min-accuracy" && has_value)
      min_accuracy = std::stod(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--samples N] [--epochs E] [--seed S] [--min-accuracy A]\n", argv[0]);
      return 2;
    }
  }
  try {
    using namespace layers;
    const SymbolicTensor encoder_input = Input({kLength}, DType::i32, "encoder_input");
    const SymbolicTensor decoder_input = Input({kLength}, DType::i32, "decoder_input");
    const auto encoder = LSTM(64, RecurrentOptions().return_sequences(true).return_state(true))
                             .call({Embedding(kVocabulary, 32)(encoder_input)});  // [sequence, h, c]
    const SymbolicTensor decoder =
        LSTM(64, RecurrentOptions().return_sequences(true))({Embedding(kVocabulary, 32)(decoder_input), encoder[1], encoder[2]});
    const SymbolicTensor context = DotAttention()({decoder, encoder[0]});
    const SymbolicTensor output = Dense(kVocabulary, "softmax")(Concatenate()({context, decoder}));
    Model model({encoder_input, decoder_input}, {output}, "seq2seq_attention", seed);
    model.compile(CompileOptions().optimizer(Adam(0.005)));
    std::printf("%s", model.summary().c_str());

    Generator gen(seed);
    const Data train = make_data(samples, gen);
    const Data test = make_data(1000, gen);
    model.fit({train.encoder_ids, train.decoder_ids}, {train.targets},
              FitOptions().epochs(epochs).batch_size(64).validation_split(0.1).seed(seed));

    const double forced = token_accuracy(
        argmax_tokens(model.predict(Tensors{test.encoder_ids, test.decoder_ids}, 256)[0]), test.answers);
    const double greedy = token_accuracy(greedy_decode(model, test.encoder_ids), test.answers);
    std::printf("token accuracy on 1000 held-out sequences: %.4f with teacher forcing, %.4f decoding greedily\n",
                forced, greedy);
    if (min_accuracy >= 0 && greedy < min_accuracy) {
      std::printf("check failed: greedy token accuracy %.4f is below %.4f\n", greedy, min_accuracy);
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "seq2seq_reverse: %s\n", e.what());
    return 1;
  }
  return 0;
}
