// Recurrent layers: SimpleRNN, LSTM and GRU (one class over the recurrent op), and Bidirectional.
#include "attnkit/ops/reduce.h"
#include "attnkit/ops/shape.h"
#include "cpu/parallel.h"
#include "json_integers.h"
#include "layers/initializers.h"
#include "layers/layer_classes.h"

namespace attnkit::layers {
namespace {

const char* type_of(ops::RecurrentCell cell) {
  switch (cell) {
    case ops::RecurrentCell::simple_rnn: return "SimpleRNN";
    case ops::RecurrentCell::lstm: return "LSTM";
    case ops::RecurrentCell::gru: return "GRU";
  }
  return "Recurrent";
}

ops::RecurrentOptions op_options(ops::RecurrentCell cell, const RecurrentOptions& o) {
  ops::RecurrentOptions options;
  options.return_sequences = o.return_sequences();
  options.go_backwards = o.go_backwards();
  options.reset_after = cell == ops::RecurrentCell::gru && o.reset_after();
  return options;
}

}  // namespace

RecurrentLayer::RecurrentLayer(ops::RecurrentCell cell, std::int64_t units, const RecurrentOptions& options)
    : Layer(type_of(cell)), cell_(cell), units_(units), options_(options) {
  ATTNKIT_CHECK(units > 0, type_of(cell), ": units must be positive, got ", units);
}

std::vector<Shape> RecurrentLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  // x, then optionally the initial states (Keras's initial_state).
  expect_inputs(input_shapes, 1, 1 + state_count());
  ATTNKIT_CHECK(input_shapes.size() == 1 || input_shapes.size() == 1 + state_count(), label(),
                ": initial states are given all together: ", state_count(), " of them");
  const Shape& x = input_shapes[0];
  ATTNKIT_CHECK(x.size() == 2 && x[1] > 0, label(), ": needs inputs [steps, features] with known features, got ",
                shape_str(x));
  for (std::size_t i = 1; i < input_shapes.size(); ++i)
    ATTNKIT_CHECK(input_shapes[i] == Shape{units_}, label(), ": initial state ", i - 1, " must be [", units_,
                  "], got ", shape_str(input_shapes[i]));
  std::vector<Shape> out{options_.return_sequences() ? Shape{x[0], units_} : Shape{units_}};
  if (options_.return_state())
    for (std::size_t i = 0; i < state_count(); ++i) out.push_back({units_});
  return out;
}

void RecurrentLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  const std::int64_t gates = ops::recurrent_gate_count(cell_) * units_;
  kernel_ = &add_parameter("kernel", glorot_uniform({input_shapes[0][1], gates}, init));
  recurrent_kernel_ = &add_parameter("recurrent_kernel", orthogonal(units_, gates, init));
  const bool two_biases = cell_ == ops::RecurrentCell::gru && options_.reset_after();
  Tensor bias = Tensor::zeros(two_biases ? Shape{2, gates} : Shape{gates});
  if (cell_ == ops::RecurrentCell::lstm)  // Keras's unit_forget_bias: the forget gate starts open
    for (std::int64_t u = units_; u < 2 * units_; ++u) bias.data<float>()[u] = 1.0f;
  bias_ = &add_parameter("bias", bias);
}

Tensors RecurrentLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  const Tensor h0 = inputs.size() > 1 ? inputs[1] : Tensor();
  const Tensor c0 = inputs.size() > 2 ? inputs[2] : Tensor();
  ops::RecurrentOptions options = op_options(cell_, options_);
  options.keep_for_backward = context.training;  // cuDNN's inference mode outside training
  ops::RecurrentResult r = ops::recurrent(cell_, inputs[0], kernel_->value, recurrent_kernel_->value, bias_->value,
                                          h0, c0, options);
  Tensors out{r.y};
  if (options_.return_state()) {
    out.push_back(r.h_last);
    if (cell_ == ops::RecurrentCell::lstm) out.push_back(r.c_last);
  }
  cache = std::move(r);
  return out;
}

Tensors RecurrentLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                 const std::vector<bool>& needs_grad) {
  const Tensor h0 = inputs.size() > 1 ? inputs[1] : Tensor();
  const Tensor c0 = inputs.size() > 2 ? inputs[2] : Tensor();
  const Tensor dh_last = output_grads.size() > 1 ? output_grads[1] : Tensor();
  const Tensor dc_last = output_grads.size() > 2 ? output_grads[2] : Tensor();
  const ops::RecurrentOptions options = op_options(cell_, options_);
  const auto& forward = std::any_cast<const ops::RecurrentResult&>(cache);
  // A forward outside training that ran through cuDNN's inference mode kept nothing for this:
  // it runs again, keeping it.
  const bool kept = forward.cache.cudnn_reserve.defined() || !forward.cache.cudnn_y.defined();
  const ops::RecurrentGrads g = ops::recurrent_backward(
      cell_, inputs[0], kernel_->value, recurrent_kernel_->value, bias_->value, h0, c0,
      kept ? forward : ops::recurrent(cell_, inputs[0], kernel_->value, recurrent_kernel_->value, bias_->value, h0, c0, options),
      output_grads[0], dh_last, dc_last, options, needs_grad[0]);
  if (kernel_->trainable) {
    accumulate(*kernel_, g.dkernel);
    accumulate(*recurrent_kernel_, g.drecurrent_kernel);
    accumulate(*bias_, g.dbias);
  }
  Tensors grads{g.dx};
  if (inputs.size() > 1) grads.push_back(needs_grad[1] ? g.dh0 : Tensor());
  if (inputs.size() > 2) grads.push_back(needs_grad[2] ? g.dc0 : Tensor());
  return grads;
}

Json RecurrentLayer::options_config() const {
  return {{"units", units_},
          {"return_sequences", options_.return_sequences()},
          {"return_state", options_.return_state()},
          {"go_backwards", options_.go_backwards()},
          {"reset_after", options_.reset_after()}};
}

std::shared_ptr<RecurrentLayer> RecurrentLayer::from_config(const Json& config, ops::RecurrentCell cell) {
  return std::make_shared<RecurrentLayer>(cell, detail::json_integer(config.at("units"), "units"),
                                          RecurrentOptions()
                                              .return_sequences(config.at("return_sequences").get<bool>())
                                              .return_state(config.at("return_state").get<bool>())
                                              .go_backwards(config.at("go_backwards").get<bool>())
                                              .reset_after(config.at("reset_after").get<bool>()));
}

// ------------------------------------------------------------------ Bidirectional

namespace {

std::string lower(const std::string& text) {
  std::string out = text;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

BidirectionalLayer::BidirectionalLayer(std::shared_ptr<RecurrentLayer> forward_layer)
    : Layer("Bidirectional"), forward_(std::move(forward_layer)) {
  ATTNKIT_CHECK(!forward_->options().return_state(),
                "Bidirectional: wrapping a layer with return_state is not supported");
  RecurrentOptions backward_options = forward_->options();
  backward_options.go_backwards(!backward_options.go_backwards());
  backward_ = std::make_shared<RecurrentLayer>(forward_->cell(), forward_->units(), backward_options);
  // Keras's names for the two directions: forward_lstm, backward_lstm.
  forward_->set_name("forward_" + lower(forward_->type()));
  backward_->set_name("backward_" + lower(forward_->type()));
  set_dtype_policy(dtype_policy());  // the directions follow the wrapper's
}

std::vector<Shape> BidirectionalLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  Shape out = forward_->output_shapes(input_shapes)[0];
  out.back() *= 2;
  return {out};
}

void BidirectionalLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  forward_->build(input_shapes, init);
  backward_->build(input_shapes, init);
  forward_->set_trainable(trainable());
  backward_->set_trainable(trainable());
}

struct BidirectionalCache {
  std::any forward, backward;
};

// The two directions are independent: on the cpu they run side by side (cpu::run_both); a
// device runs its ops in order on one stream.
template <typename F, typename G>
void both_directions(const Tensor& x, F&& forward, G&& backward) {
  if (x.is_cpu()) {
    cpu::run_both(forward, backward);
  } else {
    forward();
    backward();
  }
}

Tensors BidirectionalLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  BidirectionalCache c;
  Tensor y_forward, y_backward;
  both_directions(
      inputs[0], [&] { y_forward = forward_->forward(inputs, context, c.forward)[0]; },
      [&] { y_backward = backward_->forward(inputs, context, c.backward)[0]; });
  // The backward layer's sequence is in processing order; time order is its reverse.
  if (forward_->options().return_sequences()) y_backward = ops::flip(y_backward, 1);
  cache = std::move(c);
  return {ops::concat({y_forward, y_backward}, -1)};
}

Tensors BidirectionalLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                     const std::vector<bool>& needs_grad) {
  const auto& c = std::any_cast<const BidirectionalCache&>(cache);
  const std::int64_t units = forward_->units();
  Tensors halves = ops::concat_backward(output_grads[0], {units, units}, -1);
  if (forward_->options().return_sequences()) halves[1] = ops::flip(halves[1], 1);
  Tensor dx_forward, dx_backward;
  both_directions(
      inputs[0], [&] { dx_forward = forward_->backward(inputs, c.forward, {halves[0]}, needs_grad)[0]; },
      [&] { dx_backward = backward_->backward(inputs, c.backward, {halves[1]}, needs_grad)[0]; });
  return {needs_grad[0] ? ops::add(dx_forward, dx_backward) : Tensor()};
}

Json BidirectionalLayer::options_config() const {
  return {{"layer", {{"type", forward_->type()}, {"config", forward_->config()}}}, {"merge_mode", "concat"}};
}

LayerPtr BidirectionalLayer::from_config(const Json& config) {
  const Json& inner = config.at("layer");
  const std::string type = inner.at("type").get<std::string>();
  using ops::RecurrentCell;
  for (const RecurrentCell cell : {RecurrentCell::simple_rnn, RecurrentCell::lstm, RecurrentCell::gru})
    if (type == type_of(cell))
      return std::make_shared<BidirectionalLayer>(RecurrentLayer::from_config(inner.at("config"), cell));
  ATTNKIT_FAIL("Bidirectional wraps a SimpleRNN, LSTM or GRU, not '", type, "'");
}

// ------------------------------------------------------------------ factories

LayerRef SimpleRNN(std::int64_t units, const RecurrentOptions& options) {
  return LayerRef(std::make_shared<RecurrentLayer>(ops::RecurrentCell::simple_rnn, units, options));
}
LayerRef LSTM(std::int64_t units, const RecurrentOptions& options) {
  return LayerRef(std::make_shared<RecurrentLayer>(ops::RecurrentCell::lstm, units, options));
}
LayerRef GRU(std::int64_t units, const RecurrentOptions& options) {
  return LayerRef(std::make_shared<RecurrentLayer>(ops::RecurrentCell::gru, units, options));
}
LayerRef Bidirectional(const LayerRef& recurrent) {
  auto inner = std::dynamic_pointer_cast<RecurrentLayer>(recurrent.get());
  ATTNKIT_CHECK(inner != nullptr, "Bidirectional wraps a SimpleRNN, LSTM or GRU, not a ", recurrent->type());
  ATTNKIT_CHECK(!inner->built(), "Bidirectional: the wrapped layer must not have been used in a model already");
  return LayerRef(std::make_shared<BidirectionalLayer>(inner));
}

}  // namespace attnkit::layers
