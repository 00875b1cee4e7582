// Internal: what a Model holds beyond its public face: the graph and the compile options.
#pragma once

#include <any>
#include <map>
#include <memory>
#include <vector>

#include "attnkit/model.h"

namespace attnkit {

// What a forward pass keeps for its backward: each slot's value and each node's cache.
struct Model::Pass {
  std::vector<Tensor> values;
  std::vector<std::any> caches;
};

struct Model::Graph {
  std::vector<std::shared_ptr<Node>> nodes;  // every node after the nodes it reads
  std::map<const Node*, std::size_t> index;  // a node's position in `nodes`
  std::vector<std::size_t> first_slot;       // the slot of each node's first output
  std::size_t slot_count = 0;
  std::vector<std::size_t> input_slots, output_slots;
  std::vector<Parameter*> parameters;  // of every layer, in the order of named_parameters()
  Pass last_pass;                       // of the last forward(), for backward()

  std::size_t slot_of(const SymbolicTensor& t) const;
};

enum class LossKind { categorical_crossentropy, binary_crossentropy };

struct Model::Compiled {
  std::shared_ptr<Optimizer> optimizer;
  LossKind loss = LossKind::categorical_crossentropy;
  bool accuracy = true;
};

}  // namespace attnkit
