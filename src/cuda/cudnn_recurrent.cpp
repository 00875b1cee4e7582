// SimpleRNN, LSTM and GRU through cuDNN 9 (cudnnRNNForward, cudnnRNNBackwardData_v8,
// cudnnRNNBackwardWeights_v8), one layer, one direction: Bidirectional runs two of them, and
// go_backwards feeds cuDNN the reversed sequence, whose outputs are then already in Keras's
// processing order.
//
// Keras keeps each side's gates side by side in the columns of one matrix (kernel [I, G U]);
// cuDNN keeps one matrix per gate and side, [U, I] row-major (it computes W x), at addresses that
// cudnnGetRNNWeightParams gives. A transpose of the whole Keras matrix ([G U, I]: gate g's rows
// are cuDNN's matrix of that gate) and one copy per gate make the weight space; the gradients go
// back the same way. Gate order: LSTM i, f, c, o in both; GRU z, r, h in Keras and r, z, h in
// cuDNN. Biases: Keras's single bias is cuDNN's input bias (CUDNN_RNN_SINGLE_INP_BIAS); the GRU's
// two rows (reset_after) are its input and recurrent biases (CUDNN_RNN_DOUBLE_BIAS), and
// cuDNN's GRU applies r after the recurrent product as reset_after does. Math stays in true
// float32 (CUDNN_FMA_MATH: no TF32), so that a GPU and the cpu agree closely.
#include "cuda/cudnn_recurrent.h"

#include <cudnn.h>

#include <vector>

#include "attnkit/error.h"
#include "cuda/check.h"
#include "cuda/runtime.h"
#include "kernels/recurrent.h"
#include "kernels/reduce.h"

#define ATTNKIT_CUDNN_CHECK(call)                                                                 \
  do {                                                                                            \
    const cudnnStatus_t attnkit_cudnn_status = (call);                                            \
    if (attnkit_cudnn_status != CUDNN_STATUS_SUCCESS)                                             \
      ::attnkit::detail::throw_error(                                                             \
          __FILE__, __LINE__, #call,                                                              \
          ::attnkit::detail::concat("cuDNN error: ", cudnnGetErrorString(attnkit_cudnn_status))); \
  } while (0)

namespace attnkit::cuda {
namespace {

using Cell = ops::RecurrentCell;

// One handle per GPU, bound to that GPU's stream.
cudnnHandle_t handle_for(Device device) {
  return handle_per_device<cudnnHandle_t>(device.index, [](void* gpu_stream) {
    cudnnHandle_t handle = nullptr;
    ATTNKIT_CUDNN_CHECK(cudnnCreate(&handle));
    ATTNKIT_CUDNN_CHECK(cudnnSetStream(handle, static_cast<cudaStream_t>(gpu_stream)));
    return handle;
  });
}

// A cuDNN descriptor destroyed with its scope.
template <typename Descriptor, cudnnStatus_t (*create)(Descriptor*), cudnnStatus_t (*destroy)(Descriptor)>
class Owned {
 public:
  Owned() { ATTNKIT_CUDNN_CHECK(create(&value_)); }
  ~Owned() { destroy(value_); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Descriptor get() const { return value_; }

 private:
  Descriptor value_ = nullptr;
};
using RnnDescriptor = Owned<cudnnRNNDescriptor_t, cudnnCreateRNNDescriptor, cudnnDestroyRNNDescriptor>;
using DropoutDescriptor = Owned<cudnnDropoutDescriptor_t, cudnnCreateDropoutDescriptor, cudnnDestroyDropoutDescriptor>;
using DataDescriptor = Owned<cudnnRNNDataDescriptor_t, cudnnCreateRNNDataDescriptor, cudnnDestroyRNNDataDescriptor>;
using TensorDescriptor = Owned<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;

float* floats(const Tensor& tensor) { return static_cast<float*>(tensor.raw_data()); }
float* floats_or_null(const Tensor& tensor) { return tensor.defined() ? floats(tensor) : nullptr; }

struct Dims {
  std::int64_t B, T, I, U, G;
  std::int64_t GU() const { return G * U; }
};

// cuDNN's linear layer for Keras's gate g on the input side (the recurrent side's is this + G).
int cudnn_layer_of(Cell cell, std::int64_t keras_gate) {
  if (cell == Cell::gru && keras_gate < 2) return static_cast<int>(1 - keras_gate);  // z, r -> r, z
  return static_cast<int>(keras_gate);
}

void copy_on_stream(float* destination, const float* source, std::int64_t count, cudaStream_t on) {
  ATTNKIT_CUDA_CHECK(cudaMemcpyAsync(destination, source, static_cast<std::size_t>(count) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, on));
}

Dims dims_of(Cell cell, const Tensor& x, const Tensor& kernel) {
  const std::int64_t G = ops::recurrent_gate_count(cell);
  return {x.size(0), x.size(1), x.size(2), kernel.size(1) / G, G};
}

// x [B, T, C] with its steps reversed (go_backwards), or x itself.
Tensor in_processing_order(const Tensor& x, bool go_backwards, cudaStream_t on) {
  if (!go_backwards) return x;
  Tensor out = Tensor::empty_like(x);
  kernels::flip(floats(x), floats(out), x.size(0), x.size(1), x.size(2), static_cast<void*>(on));
  return out;
}

// What the forward and the backward both need: the descriptors and sizes of cuDNN's RNN for these
// shapes, its weight space holding Keras's weights, the sequence in processing order and a
// workspace.
class Rnn {
 public:
  // `forward_mode`: training keeps a reserve space for the backward, inference none.
  Rnn(Cell cell_kind, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
      bool go_backwards, cudnnForwardMode_t forward_mode)
      : cell(cell_kind),
        dims(dims_of(cell_kind, x, kernel)),
        device(x.device()),
        current(x.device().index),
        handle(handle_for(x.device())),
        gpu_stream(static_cast<cudaStream_t>(stream(x.device().index))) {
    const Dims& d = dims;
    ATTNKIT_CUDNN_CHECK(cudnnSetDropoutDescriptor(dropout.get(), handle, 0.0f, nullptr, 0, 0));
    const cudnnRNNMode_t mode = cell == Cell::lstm ? CUDNN_LSTM : cell == Cell::gru ? CUDNN_GRU : CUDNN_RNN_TANH;
    const cudnnRNNBiasMode_t bias_mode = !bias.defined()     ? CUDNN_RNN_NO_BIAS
                                         : cell == Cell::gru ? CUDNN_RNN_DOUBLE_BIAS
                                                             : CUDNN_RNN_SINGLE_INP_BIAS;
    ATTNKIT_CUDNN_CHECK(cudnnSetRNNDescriptor_v8(
        descriptor.get(), CUDNN_RNN_ALGO_STANDARD, mode, bias_mode, CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT,
        CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH, static_cast<std::int32_t>(d.I),
        static_cast<std::int32_t>(d.U), static_cast<std::int32_t>(d.U), 1, dropout.get(), CUDNN_RNN_PADDED_IO_ENABLED));
    // Every sequence has all T steps; x [B, T, I] and y [B, T, U] as they lie.
    const std::vector<int> lengths(static_cast<std::size_t>(d.B), static_cast<int>(d.T));
    ATTNKIT_CUDNN_CHECK(cudnnSetRNNDataDescriptor(x_desc.get(), CUDNN_DATA_FLOAT,
                                                  CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, int(d.T), int(d.B),
                                                  int(d.I), lengths.data(), nullptr));
    ATTNKIT_CUDNN_CHECK(cudnnSetRNNDataDescriptor(y_desc.get(), CUDNN_DATA_FLOAT,
                                                  CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, int(d.T), int(d.B),
                                                  int(d.U), lengths.data(), nullptr));
    const int state_dims[3] = {1, int(d.B), int(d.U)}, state_strides[3] = {int(d.B * d.U), int(d.U), 1};
    ATTNKIT_CUDNN_CHECK(cudnnSetTensorNdDescriptor(state_desc.get(), CUDNN_DATA_FLOAT, 3, state_dims, state_strides));
    seq_lengths = Tensor::full({d.B}, static_cast<double>(d.T), DType::i32, device);
    ATTNKIT_CUDNN_CHECK(cudnnGetRNNWeightSpaceSize(handle, descriptor.get(), &weight_bytes));
    ATTNKIT_CUDNN_CHECK(
        cudnnGetRNNTempSpaceSizes(handle, descriptor.get(), forward_mode, x_desc.get(), &work_bytes, &reserve_bytes));
    if (forward_mode == CUDNN_FWD_MODE_INFERENCE) reserve_bytes = 0;
    weights = pack(kernel, recurrent_kernel, bias);
    x_in = in_processing_order(x, go_backwards, gpu_stream);
    work = bytes(work_bytes);
  }

  Tensor bytes(std::size_t count) const { return Tensor::empty({static_cast<std::int64_t>(count)}, DType::u8, device); }

  // cuDNN's weight space holding Keras's weights.
  Tensor pack(const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias) const {
    Tensor space = bytes(weight_bytes);
    ATTNKIT_CUDA_CHECK(cudaMemsetAsync(space.raw_data(), 0, weight_bytes, gpu_stream));
    const Tensor input_t = transposed(kernel), recurrent_t = transposed(recurrent_kernel);
    for (std::int64_t g = 0; g < dims.G; ++g) {
      Params input = params(space, cudnn_layer_of(cell, g), dims.I);
      Params recurrent = params(space, int(dims.G) + cudnn_layer_of(cell, g), dims.U);
      copy_on_stream(input.matrix, floats(input_t) + g * dims.U * dims.I, dims.U * dims.I, gpu_stream);
      copy_on_stream(recurrent.matrix, floats(recurrent_t) + g * dims.U * dims.U, dims.U * dims.U, gpu_stream);
      if (!bias.defined()) continue;
      copy_on_stream(input.bias, floats(bias) + g * dims.U, dims.U, gpu_stream);
      if (cell == Cell::gru) copy_on_stream(recurrent.bias, floats(bias) + dims.GU() + g * dims.U, dims.U, gpu_stream);
    }
    return space;
  }

  // Keras's weight gradients from cuDNN's (in a weight space's layout); dbias may be undefined.
  void unpack(const Tensor& dspace, Tensor& dkernel, Tensor& drecurrent_kernel, Tensor& dbias) const {
    const Tensor input_t = Tensor::empty({dims.GU(), dims.I}, DType::f32, device);
    const Tensor recurrent_t = Tensor::empty({dims.GU(), dims.U}, DType::f32, device);
    for (std::int64_t g = 0; g < dims.G; ++g) {
      const Params input = params(dspace, cudnn_layer_of(cell, g), dims.I);
      const Params recurrent = params(dspace, int(dims.G) + cudnn_layer_of(cell, g), dims.U);
      copy_on_stream(floats(input_t) + g * dims.U * dims.I, input.matrix, dims.U * dims.I, gpu_stream);
      copy_on_stream(floats(recurrent_t) + g * dims.U * dims.U, recurrent.matrix, dims.U * dims.U, gpu_stream);
      if (!dbias.defined()) continue;
      copy_on_stream(floats(dbias) + g * dims.U, input.bias, dims.U, gpu_stream);
      if (cell == Cell::gru) copy_on_stream(floats(dbias) + dims.GU() + g * dims.U, recurrent.bias, dims.U, gpu_stream);
    }
    // [G U, cols] back to Keras's [cols, G U].
    kernels::swap_axes(floats(input_t), floats(dkernel), 1, dims.GU(), 1, dims.I, 1, gpu_stream);
    kernels::swap_axes(floats(recurrent_t), floats(drecurrent_kernel), 1, dims.GU(), 1, dims.U, 1, gpu_stream);
  }

  Cell cell;
  Dims dims;
  Device device;
  CurrentDevice current;  // for the scope of the call
  cudnnHandle_t handle;
  cudaStream_t gpu_stream;
  RnnDescriptor descriptor;
  DropoutDescriptor dropout;
  DataDescriptor x_desc, y_desc;
  TensorDescriptor state_desc;
  Tensor seq_lengths;  // i32 [B] on the GPU, as cuDNN wants them there
  std::size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0;
  Tensor weights;  // cuDNN's weight space
  Tensor x_in;     // x in processing order
  Tensor work;     // cuDNN's workspace

 private:
  struct Params {
    float* matrix;
    float* bias;  // null where the layer has none
  };

  // Where linear layer `layer`'s matrix ([U, cols]) and bias lie inside `space`.
  Params params(const Tensor& space, int layer, std::int64_t cols) const {
    TensorDescriptor matrix, bias;
    void* matrix_address = nullptr;
    void* bias_address = nullptr;
    ATTNKIT_CUDNN_CHECK(cudnnGetRNNWeightParams(handle, descriptor.get(), 0, weight_bytes, space.raw_data(), layer,
                                                matrix.get(), &matrix_address, bias.get(), &bias_address));
    cudnnDataType_t type;
    int rank = 0, sizes[3] = {0, 0, 0}, strides[3] = {0, 0, 0};
    ATTNKIT_CUDNN_CHECK(cudnnGetTensorNdDescriptor(matrix.get(), 3, &type, &rank, sizes, strides));
    // The layout assumed above: U rows of `cols` packed floats.
    ATTNKIT_CHECK(matrix_address != nullptr && rank == 3 && sizes[0] == 1 && sizes[1] == dims.U && sizes[2] == cols &&
                      strides[2] == 1 && strides[1] == cols,
                  "cuDNN: linear layer ", layer, " of the ", ops::recurrent_cell_name(cell), " has sizes [", sizes[0],
                  ", ", sizes[1], ", ", sizes[2], "] and strides [", strides[0], ", ", strides[1], ", ", strides[2],
                  "], not [1, ", dims.U, ", ", cols, "] packed");
    return {static_cast<float*>(matrix_address), static_cast<float*>(bias_address)};
  }

  // A float32 [rows, cols] matrix transposed, on the GPU.
  Tensor transposed(const Tensor& matrix) const {
    const std::int64_t rows = matrix.size(0), cols = matrix.size(1);
    Tensor out = Tensor::empty({cols, rows}, DType::f32, device);
    kernels::swap_axes(floats(matrix), floats(out), 1, rows, 1, cols, 1, gpu_stream);
    return out;
  }
};

}  // namespace

ops::RecurrentResult cudnn_recurrent(Cell cell, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel,
                                     const Tensor& bias, const Tensor& h0, const Tensor& c0,
                                     const ops::RecurrentOptions& options) {
  const cudnnForwardMode_t mode = options.keep_for_backward ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE;
  const Rnn rnn(cell, x, kernel, recurrent_kernel, bias, options.go_backwards, mode);
  const Dims& d = rnn.dims;
  const Device device = rnn.device;
  const bool lstm = cell == Cell::lstm;

  ops::RecurrentResult out;
  out.cache.cudnn_y = Tensor::empty({d.B, d.T, d.U}, DType::f32, device);
  if (options.keep_for_backward) out.cache.cudnn_reserve = rnn.bytes(rnn.reserve_bytes);
  out.h_last = Tensor::empty({d.B, d.U}, DType::f32, device);
  if (lstm) out.c_last = Tensor::empty({d.B, d.U}, DType::f32, device);
  ATTNKIT_CUDNN_CHECK(cudnnRNNForward(
      rnn.handle, rnn.descriptor.get(), mode,
      static_cast<const std::int32_t*>(rnn.seq_lengths.raw_data()), rnn.x_desc.get(), rnn.x_in.raw_data(),
      rnn.y_desc.get(), out.cache.cudnn_y.raw_data(), rnn.state_desc.get(), floats_or_null(h0), out.h_last.raw_data(),
      rnn.state_desc.get(), floats_or_null(c0), floats_or_null(out.c_last), rnn.weight_bytes, rnn.weights.raw_data(),
      rnn.work_bytes, rnn.work.raw_data(), rnn.reserve_bytes,
      options.keep_for_backward ? out.cache.cudnn_reserve.raw_data() : nullptr));
  out.y = options.return_sequences ? out.cache.cudnn_y : out.h_last.clone();
  return out;
}

ops::RecurrentGrads cudnn_recurrent_backward(Cell cell, const Tensor& x, const Tensor& kernel,
                                             const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                                             const Tensor& c0, const ops::RecurrentResult& forward, const Tensor& dy,
                                             const Tensor& dh_last, const Tensor& dc_last,
                                             const ops::RecurrentOptions& options, bool needs_dx) {
  ATTNKIT_CHECK(forward.cache.cudnn_reserve.defined(),
                "recurrent_backward: the forward ran in cuDNN's inference mode (RecurrentOptions::keep_for_backward "
                "false) and kept no reserve space for a backward");
  const Rnn rnn(cell, x, kernel, recurrent_kernel, bias, options.go_backwards, CUDNN_FWD_MODE_TRAINING);
  const Dims& d = rnn.dims;
  const Device device = rnn.device;
  const bool lstm = cell == Cell::lstm;
  ATTNKIT_CHECK(forward.cache.cudnn_reserve.numel() == static_cast<std::int64_t>(rnn.reserve_bytes),
                "recurrent_backward: cuDNN's reserve space from the forward has ", forward.cache.cudnn_reserve.numel(),
                " bytes, but these sizes need ", rnn.reserve_bytes);

  // cuDNN takes the gradient of the whole output sequence and of the final states: the
  // gradient of a last-state output joins dh_last.
  const bool sequence_grad = dy.defined() && options.return_sequences;
  const Tensor dy_seq = sequence_grad ? dy : Tensor::zeros({d.B, d.T, d.U}, DType::f32, device);
  const Tensor dhy = Tensor::empty({d.B, d.U}, DType::f32, device);
  kernels::recurrent_state_grads(dy.defined() && !options.return_sequences ? floats(dy) : nullptr,
                                 floats_or_null(dh_last), nullptr, floats(dhy), nullptr, d.B * d.U, rnn.gpu_stream);

  ops::RecurrentGrads grads;
  const Tensor dx_in = Tensor::empty({d.B, d.T, d.I}, DType::f32, device);
  grads.dh0 = Tensor::empty({d.B, d.U}, DType::f32, device);
  if (lstm) grads.dc0 = Tensor::empty({d.B, d.U}, DType::f32, device);
  void* const reserve = forward.cache.cudnn_reserve.raw_data();
  ATTNKIT_CUDNN_CHECK(cudnnRNNBackwardData_v8(
      rnn.handle, rnn.descriptor.get(), static_cast<const std::int32_t*>(rnn.seq_lengths.raw_data()), rnn.y_desc.get(),
      forward.cache.cudnn_y.raw_data(), dy_seq.raw_data(), rnn.x_desc.get(), dx_in.raw_data(), rnn.state_desc.get(),
      floats_or_null(h0), dhy.raw_data(), grads.dh0.raw_data(), rnn.state_desc.get(), floats_or_null(c0),
      floats_or_null(dc_last), floats_or_null(grads.dc0), rnn.weight_bytes, rnn.weights.raw_data(), rnn.work_bytes,
      rnn.work.raw_data(), rnn.reserve_bytes, reserve));
  const Tensor dweights = rnn.bytes(rnn.weight_bytes);
  ATTNKIT_CUDA_CHECK(cudaMemsetAsync(dweights.raw_data(), 0, rnn.weight_bytes, rnn.gpu_stream));  // WGRAD_MODE_ADD
  ATTNKIT_CUDNN_CHECK(cudnnRNNBackwardWeights_v8(
      rnn.handle, rnn.descriptor.get(), CUDNN_WGRAD_MODE_ADD,
      static_cast<const std::int32_t*>(rnn.seq_lengths.raw_data()), rnn.x_desc.get(), rnn.x_in.raw_data(),
      rnn.state_desc.get(), floats_or_null(h0), rnn.y_desc.get(), forward.cache.cudnn_y.raw_data(), rnn.weight_bytes,
      dweights.raw_data(), rnn.work_bytes, rnn.work.raw_data(), rnn.reserve_bytes, reserve));

  grads.dkernel = Tensor::empty_like(kernel);
  grads.drecurrent_kernel = Tensor::empty_like(recurrent_kernel);
  if (bias.defined()) grads.dbias = Tensor::empty_like(bias);
  rnn.unpack(dweights, grads.dkernel, grads.drecurrent_kernel, grads.dbias);
  if (needs_dx) grads.dx = in_processing_order(dx_in, options.go_backwards, rnn.gpu_stream);
  return grads;
}

}  // namespace attnkit::cuda
