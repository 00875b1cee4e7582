// attnkit/zoo.h: the sentiment models of ../MODELS.md (the Keras blog post's twelve), each as
// the blog defines it, and each also with a trainable embedding.
//
// Every model reads token ids [20] (i32) and ends in Dense(2, softmax). Names:
//   mlp, cnn, rnn, lstm, gru, cnn-lstm, bilstm, textcnn, attention, bilstm-attention,
//   bigru-attention, attention3
// and the same names with "-trainable" appended for a trainable embedding. The blog freezes the embedding of textcnn,
// attention, bilstm-attention, bigru-attention and attention3 (Keras trainable=False): those are
// reproduced as they are, and their "-trainable" twins train it. Beyond the blog, "transformer"
// is a Transformer encoder classifier (token and position embeddings, one block of 2-head
// self-attention with the padding masked and a feed-forward net, residuals and layer norm,
// average pooling).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "attnkit/model.h"

namespace attnkit::zoo {

struct ModelSpec {
  std::string name;          // "bilstm-attention"
  std::string blog_name;     // "BiLSTM+Attention"
  int epochs;                // the blog's epoch count, the default for training
  double blog_accuracy;      // the blog's test accuracy
  bool frozen_embedding;     // as the blog defines the model
  // Models beyond the blog (the trainable twins of its frozen models, the transformer) stop
  // early on the validation loss and keep their best weights; the blog's own run all epochs.
  bool early_stopping = false;
};

// The twelve models, in the blog's order.
const std::vector<ModelSpec>& models();
// The distinct models, in the order the zoo trains them: the twelve, the trainable twins of the
// five frozen ones, and transformer. build() also takes "-trainable" on the seven models that
// already train their embedding (the same model).
std::vector<std::string> model_names();
// The spec of a name (a "-trainable" name gives its base model with frozen_embedding false;
// transformer has no blog figure: blog_accuracy 0).
ModelSpec spec(const std::string& name);

struct ZooOptions {
  ATTNKIT_ARG(std::int64_t, vocabulary) = 6000;
  ATTNKIT_ARG(std::int64_t, embedding_dim) = 32;
  ATTNKIT_ARG(std::int64_t, sequence_length) = 20;
  ATTNKIT_ARG(std::int64_t, classes) = 2;
  ATTNKIT_ARG(std::uint64_t, seed) = 0;
};

// The model of that name, built (its parameters drawn from the seed) but not compiled; an
// unknown name is an error that lists the known ones.
std::unique_ptr<Model> build(const std::string& name, const ZooOptions& options = {});

}  // namespace attnkit::zoo
