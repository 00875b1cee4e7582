// attnkit._attnkit: the Python bindings of libattnkit (nanobind). The package attnkit
// (python/attnkit/) re-exports them with the conversions of any array to a Tensor.
//
// Tensors cross in both directions without copies through DLPack: an attnkit Tensor exports its
// memory as a DLPack capsule that keeps the Tensor alive (`__dlpack__`), and `from_dlpack` wraps
// another library's contiguous array in a Tensor that keeps that array alive.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <attnkit/attnkit.h>

#include "bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace attnkit {

DType python::dtype_named(const std::string& name) {
  const std::optional<DType> dtype = dtype_from_name(name);
  ATTNKIT_CHECK(dtype.has_value(), "unknown dtype \"", name, "\": f32, f64, f16, bf16, i32 or u8");
  return *dtype;
}

using python::defined_or_none;
using python::opt;
namespace {

// ---------------------------------------------------------------- DLPack

nb::dlpack::dtype dlpack_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return nb::dtype<float>();
    case DType::f64: return nb::dtype<double>();
    case DType::f16: return {static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float), 16, 1};
    case DType::bf16: return {static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bfloat), 16, 1};
    case DType::i32: return nb::dtype<std::int32_t>();
    case DType::u8: return nb::dtype<std::uint8_t>();
  }
  ATTNKIT_FAIL("unknown dtype");
}

// The attnkit dtype of a DLPack dtype; an error naming the ones attnkit takes otherwise.
DType dtype_of_dlpack(nb::dlpack::dtype d) {
  using code = nb::dlpack::dtype_code;
  const auto is = [&](code c, int bits) {
    return d.code == static_cast<std::uint8_t>(c) && d.bits == bits && d.lanes == 1;
  };
  if (is(code::Float, 32)) return DType::f32;
  if (is(code::Float, 64)) return DType::f64;
  if (is(code::Float, 16)) return DType::f16;
  if (is(code::Bfloat, 16)) return DType::bf16;
  if (is(code::Int, 32)) return DType::i32;
  if (is(code::UInt, 8)) return DType::u8;
  if (is(code::Bool, 8)) return DType::u8;
  ATTNKIT_FAIL("from_dlpack: attnkit takes float32, float64, float16, bfloat16, int32, uint8 and bool arrays; got "
               "DLPack type code ", int(d.code), " of ", int(d.bits), " bits and ", int(d.lanes), " lanes");
}

Device device_of_dlpack(int type, int id) {
  if (type == nb::device::cpu::value) return Device::cpu();
  if (type == nb::device::cuda::value) return Device::cuda(id);
  ATTNKIT_FAIL("from_dlpack: attnkit takes arrays on the cpu and on CUDA devices; got DLPack device type ", type);
}

// A Tensor over the array's memory, without a copy; the array stays alive as long as the Tensor.
Tensor from_dlpack(nb::ndarray<> array) {
  const DType dtype = dtype_of_dlpack(array.dtype());
  const Device device = device_of_dlpack(array.device_type(), array.device_id());
  Shape shape;
  std::int64_t expected_stride = 1;
  for (std::size_t i = 0; i < array.ndim(); ++i) shape.push_back(static_cast<std::int64_t>(array.shape(i)));
  for (std::size_t i = array.ndim(); i-- > 0;) {
    // Extents of 1 have no meaningful stride (NumPy and PyTorch give them any).
    if (array.shape(i) != 1 && array.stride(i) != expected_stride)
      ATTNKIT_FAIL("from_dlpack: attnkit takes contiguous row-major arrays; this one of shape ", shape_str(shape),
                   " has stride ", array.stride(i), " on axis ", i, " where ", expected_stride,
                   " would be contiguous (copy it first, e.g. numpy.ascontiguousarray or .contiguous())");
    expected_stride *= static_cast<std::int64_t>(array.shape(i));
  }
  auto* keep = new nb::ndarray<>(array);
  return Tensor::from_external(array.data(), shape, dtype, device, [keep] {
    nb::gil_scoped_acquire gil;
    delete keep;
  });
}

std::pair<int, int> dlpack_device(const Tensor& t) {
  const Device device = t.device();
  if (device.is_cpu()) return {nb::device::cpu::value, 0};
  if (device.is_cuda()) return {nb::device::cuda::value, device.index};
  ATTNKIT_FAIL("a tensor on ", device.str(), " has no DLPack device: move it to the cpu first");
}

// A capsule that keeps a copy of the tensor (and so its memory) alive, the owner of an exported array.
nb::capsule owner_of(const Tensor& t) {
  return nb::capsule(new Tensor(t), [](void* p) noexcept { delete static_cast<Tensor*>(p); });
}
std::vector<std::size_t> extents_of(const Tensor& t) { return {t.shape().begin(), t.shape().end()}; }

// The tensor's memory as a DLPack capsule (nanobind's export of an ndarray without a framework)
// that keeps the tensor alive.
nb::ndarray<> as_ndarray(const Tensor& t) {
  const auto [type, id] = dlpack_device(t);
  const std::vector<std::size_t> shape = extents_of(t);
  return nb::ndarray<>(t.raw_data(), shape.size(), shape.data(), owner_of(t), nullptr, dlpack_dtype(t.dtype()), type,
                       id);
}

// A cpu tensor's memory as a NumPy array (no copy).
nb::ndarray<nb::numpy> as_numpy(const Tensor& t) {
  ATTNKIT_CHECK(t.is_cpu(), "numpy(): the tensor is on ", t.device().str(), "; move it with .to(\"cpu\") first");
  ATTNKIT_CHECK(t.dtype() != DType::bf16, "numpy(): NumPy has no bfloat16; convert with .to(\"f32\") first");
  const std::vector<std::size_t> shape = extents_of(t);
  return nb::ndarray<nb::numpy>(t.raw_data(), shape.size(), shape.data(), owner_of(t), nullptr,
                                dlpack_dtype(t.dtype()));
}

ops::AttentionKernel parse_kernel(const std::string& name) {
  if (name == "fused") return ops::AttentionKernel::fused;
  if (name == "unfused") return ops::AttentionKernel::unfused;
  ATTNKIT_FAIL("unknown kernel \"", name, "\": fused or unfused");
}

// ---------------------------------------------------------------- attention options

ops::AttentionOptions attention_options(std::int64_t num_heads, std::int64_t num_kv_heads, bool causal,
                                        std::optional<double> scale, std::optional<Tensor> bias, bool bias_grad,
                                        std::optional<Tensor> alibi_slopes, double softcap,
                                        std::pair<std::int64_t, std::int64_t> window,
                                        std::optional<Tensor> attention_mask, double dropout,
                                        std::uint64_t dropout_seed, std::uint64_t dropout_offset, bool return_weights,
                                        const std::string& kernel) {
  ops::AttentionOptions o;
  o.num_heads = num_heads, o.num_kv_heads = num_kv_heads, o.causal = causal, o.scale = scale;
  o.bias = opt(bias), o.bias_grad = bias_grad, o.alibi_slopes = opt(alibi_slopes), o.softcap = softcap;
  o.window_left = window.first, o.window_right = window.second;
  o.attention_mask = opt(attention_mask);
  o.dropout = dropout, o.dropout_seed = dropout_seed, o.dropout_offset = dropout_offset;
  o.return_weights = return_weights;
  o.kernel = parse_kernel(kernel);
  return o;
}

// The keyword arguments of every scaled dot-product attention op, in attention_options' order.
#define ATTNKIT_ATTENTION_KWARGS                                                                               \
  nb::kw_only(), "num_heads"_a = 1, "num_kv_heads"_a = 0, "causal"_a = false, "scale"_a = nb::none(),          \
      "bias"_a = nb::none(), "bias_grad"_a = false, "alibi_slopes"_a = nb::none(), "softcap"_a = 0.0,          \
      "window"_a = std::pair<std::int64_t, std::int64_t>(-1, -1), "attention_mask"_a = nb::none(),             \
      "dropout"_a = 0.0, "dropout_seed"_a = 0, "dropout_offset"_a = 0, "return_weights"_a = false,             \
      "kernel"_a = "fused"
#define ATTNKIT_ATTENTION_PARAMS                                                                               \
  std::int64_t num_heads, std::int64_t num_kv_heads, bool causal, std::optional<double> scale,                 \
      std::optional<Tensor> bias, bool bias_grad, std::optional<Tensor> alibi_slopes, double softcap,          \
      std::pair<std::int64_t, std::int64_t> window, std::optional<Tensor> attention_mask, double dropout,       \
      std::uint64_t dropout_seed, std::uint64_t dropout_offset, bool return_weights, const std::string& kernel
#define ATTNKIT_ATTENTION_OPTIONS                                                                              \
  attention_options(num_heads, num_kv_heads, causal, scale, bias, bias_grad, alibi_slopes, softcap, window,    \
                    attention_mask, dropout, dropout_seed, dropout_offset, return_weights, kernel)

// The forward's results as the backward reads them.
ops::AttentionResult forward_of(const Tensor& out, const Tensor& lse) {
  ops::AttentionResult r;
  r.out = out, r.lse = lse;
  return r;
}

}  // namespace
}  // namespace attnkit

NB_MODULE(_attnkit, m) {
  using namespace attnkit;
  m.doc() = "attnkit: attention kernels, CPU reference ops and Keras-style training (the C++ library's bindings)";

  // attnkit.Error (a ValueError): the library's sentence, without its source location.
  // Held for the life of the process: the translator may run until the interpreter ends.
  static PyObject* const error_type = PyErr_NewExceptionWithDoc(
      "attnkit.Error", "An argument attnkit does not take, or an operation it cannot do; the message says which.",
      PyExc_ValueError, nullptr);
  m.attr("Error") = nb::borrow(error_type);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(error_type, e.message().c_str());
    }
  });

  // ------------------------------------------------------------ Tensor
  nb::class_<Tensor>(m, "Tensor",
                     "An n-dimensional array on one device (cpu, cuda:N or sim), contiguous and row-major. "
                     "Copying a Tensor shares its memory; numpy() and DLPack export it without a copy.")
      .def("__init__", [](Tensor* t, nb::ndarray<> array) { new (t) Tensor(from_dlpack(array)); }, "array"_a,
           "The array's memory as a Tensor, without a copy (from_dlpack).")
      .def_prop_ro("shape", [](const Tensor& t) { return t.shape(); }, "The extents, a list of ints.")
      .def_prop_ro("dtype", [](const Tensor& t) { return std::string(dtype_name(t.dtype())); },
                   "The element type: f32, f64, f16, bf16, i32 or u8.")
      .def_prop_ro("device", [](const Tensor& t) { return t.device().str(); }, "cpu, cuda:N or sim.")
      .def_prop_ro("ndim", &Tensor::dim)
      .def("numel", &Tensor::numel, "The number of elements.")
      .def("__len__", [](const Tensor& t) {
             ATTNKIT_CHECK(t.dim() > 0, "len() of a scalar tensor");
             return t.size(0);
           })
      .def("numpy", &as_numpy, "The elements as a NumPy array sharing this tensor's memory (cpu tensors).")
      .def("__dlpack__",
           [](const Tensor& t, nb::object /*stream*/, nb::object /*max_version*/, nb::object dl_device,
              nb::object copy) {
             ATTNKIT_CHECK(copy.is_none() || !nb::cast<bool>(copy),
                           "__dlpack__: attnkit exports its memory as it is; copy after the exchange");
             using DeviceKey = std::pair<int, int>;
             ATTNKIT_CHECK(dl_device.is_none() || nb::cast<DeviceKey>(dl_device) == dlpack_device(t),
                           "__dlpack__: the tensor is on ", t.device().str(), "; move it with .to(...) first");
             return as_ndarray(t);
           },
           nb::kw_only(), "stream"_a = nb::none(), "max_version"_a = nb::none(), "dl_device"_a = nb::none(),
           "copy"_a = nb::none(),
           "The DLPack capsule of the tensor's memory (the array API's __dlpack__), keeping the tensor alive. "
           "attnkit's work is finished when an op returns, so any stream may read it.")
      .def("__dlpack_device__", &dlpack_device, "(DLPack device type, index): (1, 0) on the cpu, (2, N) on cuda:N.")
      .def("to", [](const Tensor& t, const std::string& where) {
             const std::optional<DType> dtype = dtype_from_name(where);
             return dtype ? t.to(*dtype) : t.to(Device::parse(where));
           }, "target"_a, "A copy converted to a dtype (\"f32\", ...) or moved to a device (\"cpu\", \"cuda:0\", "
                          "\"sim\"); the same tensor when it already is.")
      .def("clone", &Tensor::clone, "A deep copy.")
      .def("reshape", &Tensor::reshape, "shape"_a, "A view with another shape of equal size (one extent may be -1).")
      .def("item", [](const Tensor& t) { return t.item(); }, "The value of a one-element cpu tensor.")
      .def("__repr__", [](const Tensor& t) { return t.str(); });

  // Every op's Tensor argument takes a NumPy array or a PyTorch tensor as well, wrapped in place.
  nb::implicitly_convertible<nb::ndarray<>, Tensor>();

  m.def("from_dlpack", &from_dlpack, "array"_a.noconvert(),
        "A Tensor over any DLPack-capable array (NumPy, PyTorch, ...) without a copy: same memory, dtype and device. "
        "The array must be contiguous and row-major, of a dtype attnkit takes.");
  m.def("empty", [](const Shape& shape, const std::string& dtype, const std::string& device) {
          return Tensor::empty(shape, python::dtype_named(dtype), Device::parse(device));
        }, "shape"_a, "dtype"_a = "f32", "device"_a = "cpu");
  m.def("zeros", [](const Shape& shape, const std::string& dtype, const std::string& device) {
          return Tensor::zeros(shape, python::dtype_named(dtype), Device::parse(device));
        }, "shape"_a, "dtype"_a = "f32", "device"_a = "cpu");
  m.def("cuda_device_count", &cuda_device_count, "CUDA devices present (0 in a build without CUDA).");

  // ------------------------------------------------------------ attention results
  nb::class_<ops::AttentionResult>(m, "AttentionResult")
      .def_prop_ro("out", [](const ops::AttentionResult& r) { return r.out; }, "[B, Tq, H dv]")
      .def_prop_ro("lse", [](const ops::AttentionResult& r) { return r.lse; }, "[B, H, Tq], each query's log-sum-exp")
      .def_prop_ro("weights", [](const ops::AttentionResult& r) { return defined_or_none(r.weights); },
                   "[B, H, Tq, Tk] with return_weights, else None");
  nb::class_<ops::AttentionGrads>(m, "AttentionGrads")
      .def_prop_ro("dq", [](const ops::AttentionGrads& g) { return g.dq; })
      .def_prop_ro("dk", [](const ops::AttentionGrads& g) { return g.dk; })
      .def_prop_ro("dv", [](const ops::AttentionGrads& g) { return g.dv; })
      .def_prop_ro("dbias", [](const ops::AttentionGrads& g) { return defined_or_none(g.dbias); });
  nb::class_<ops::AttentionSupport>(m, "AttentionSupport")
      .def_prop_ro("path", [](const ops::AttentionSupport& s) { return std::string(ops::attention_path_name(s.path)); })
      .def_prop_ro("why", [](const ops::AttentionSupport& s) { return s.why; });

  // ------------------------------------------------------------ scaled dot-product attention
  m.def("scaled_dot_product_attention",
        [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> key_mask,
           ATTNKIT_ATTENTION_PARAMS) {
          return ops::scaled_dot_product_attention(q, k, v, opt(key_mask), ATTNKIT_ATTENTION_OPTIONS);
        },
        "q"_a, "k"_a, "v"_a, "key_mask"_a = nb::none(), ATTNKIT_ATTENTION_KWARGS,
        "Multi-head scaled dot-product attention (attnkit/ops/attention.h, 4.): q [B, Tq, H dk], k [B, Tk, Hkv dk], "
        "v [B, Tk, Hkv dv]; key_mask u8 [B, Tk] or i32 key lengths [B]. window = (left, right), -1 for none.");
  m.def("scaled_dot_product_attention_backward",
        [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> key_mask, const Tensor& out,
           const Tensor& lse, const Tensor& dout, ATTNKIT_ATTENTION_PARAMS) {
          return ops::scaled_dot_product_attention_backward(q, k, v, opt(key_mask), forward_of(out, lse), dout,
                                                            ATTNKIT_ATTENTION_OPTIONS);
        },
        "q"_a, "k"_a, "v"_a, "key_mask"_a.none(), "out"_a, "lse"_a, "dout"_a, ATTNKIT_ATTENTION_KWARGS,
        "dq, dk, dv (and dbias with bias_grad) of scaled_dot_product_attention, from its out and lse; the options "
        "must be the forward's.");
  m.def("scaled_dot_product_attention_supports",
        [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> key_mask,
           ATTNKIT_ATTENTION_PARAMS) {
          return ops::scaled_dot_product_attention_supports(q, k, v, opt(key_mask), ATTNKIT_ATTENTION_OPTIONS);
        },
        "q"_a, "k"_a, "v"_a, "key_mask"_a = nb::none(), ATTNKIT_ATTENTION_KWARGS,
        "The path a call with these operands takes (cpu, fused, unfused or none) and why.");
  m.def("packed_self_attention",
        [](const Tensor& qkv, std::optional<Tensor> key_mask, ATTNKIT_ATTENTION_PARAMS) {
          return ops::packed_self_attention(qkv, opt(key_mask), ATTNKIT_ATTENTION_OPTIONS);
        },
        "qkv"_a, "key_mask"_a = nb::none(), ATTNKIT_ATTENTION_KWARGS,
        "Self-attention over q, k and v side by side in one [B, T, (H + 2 Hkv) d] tensor (one projection).");
  m.def("packed_self_attention_backward",
        [](const Tensor& qkv, std::optional<Tensor> key_mask, const Tensor& out, const Tensor& lse, const Tensor& dout,
           ATTNKIT_ATTENTION_PARAMS) {
          return ops::packed_self_attention_backward(qkv, opt(key_mask), forward_of(out, lse), dout,
                                                     ATTNKIT_ATTENTION_OPTIONS);
        },
        "qkv"_a, "key_mask"_a.none(), "out"_a, "lse"_a, "dout"_a, ATTNKIT_ATTENTION_KWARGS, "dqkv, qkv's layout.");
  m.def("attention_dropout_mask",
        [](std::int64_t batch, std::int64_t heads, std::int64_t queries, std::int64_t keys, double dropout,
           std::uint64_t dropout_seed, std::uint64_t dropout_offset) {
          ops::AttentionOptions o;
          o.dropout = dropout, o.dropout_seed = dropout_seed, o.dropout_offset = dropout_offset;
          return ops::attention_dropout_mask(batch, heads, queries, keys, o);
        },
        "batch"_a, "heads"_a, "queries"_a, "keys"_a, nb::kw_only(), "dropout"_a, "dropout_seed"_a = 0,
        "dropout_offset"_a = 0, "u8 [B, H, Tq, Tk], 1 where the attention's dropout keeps the probability.");
  m.def("varlen_attention",
        [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
           ATTNKIT_ATTENTION_PARAMS) {
          return ops::varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, ATTNKIT_ATTENTION_OPTIONS);
        },
        "q"_a, "k"_a, "v"_a, "cu_seqlens_q"_a, "cu_seqlens_k"_a, ATTNKIT_ATTENTION_KWARGS,
        "Attention over sequences packed without padding: q [total_q, H, dk], k and v [total_k, Hkv, d], "
        "cu_seqlens i32 [B + 1].");
  m.def("varlen_attention_supports",
        [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
           ATTNKIT_ATTENTION_PARAMS) {
          return ops::varlen_attention_supports(q, k, v, cu_seqlens_q, cu_seqlens_k, ATTNKIT_ATTENTION_OPTIONS);
        },
        "q"_a, "k"_a, "v"_a, "cu_seqlens_q"_a, "cu_seqlens_k"_a, ATTNKIT_ATTENTION_KWARGS);
  m.def("varlen_attention_backward",
        [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
           const Tensor& out, const Tensor& lse, const Tensor& dout, ATTNKIT_ATTENTION_PARAMS) {
          return ops::varlen_attention_backward(q, k, v, cu_seqlens_q, cu_seqlens_k, forward_of(out, lse), dout,
                                                ATTNKIT_ATTENTION_OPTIONS);
        },
        "q"_a, "k"_a, "v"_a, "cu_seqlens_q"_a, "cu_seqlens_k"_a, "out"_a, "lse"_a, "dout"_a, ATTNKIT_ATTENTION_KWARGS);
  m.def("decode_attention_supports",
        [](const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& cache_lengths,
           std::optional<Tensor> k_new, std::optional<Tensor> v_new, std::int64_t num_splits,
           ATTNKIT_ATTENTION_PARAMS) {
          return ops::decode_attention_supports(q, k_cache, v_cache, cache_lengths, opt(k_new), opt(v_new),
                                                ATTNKIT_ATTENTION_OPTIONS, num_splits);
        },
        "q"_a, "k_cache"_a, "v_cache"_a, "cache_lengths"_a, "k_new"_a = nb::none(), "v_new"_a = nb::none(),
        "num_splits"_a = 0, ATTNKIT_ATTENTION_KWARGS);
  m.def("decode_attention",
        [](const Tensor& q, Tensor k_cache, Tensor v_cache, const Tensor& cache_lengths, std::optional<Tensor> k_new,
           std::optional<Tensor> v_new, std::int64_t num_splits, ATTNKIT_ATTENTION_PARAMS) {
          return ops::decode_attention(q, k_cache, v_cache, cache_lengths, opt(k_new), opt(v_new),
                                       ATTNKIT_ATTENTION_OPTIONS, num_splits);
        },
        "q"_a, "k_cache"_a, "v_cache"_a, "cache_lengths"_a, "k_new"_a = nb::none(), "v_new"_a = nb::none(),
        "num_splits"_a = 0, ATTNKIT_ATTENTION_KWARGS,
        "Decoding against [B, capacity, Hkv d] caches: k_new and v_new [B, Tn, ...] are written into them in place "
        "after cache_lengths[b] steps, then q [B, Tq, H dk] attends as the last Tq steps.");

  // ------------------------------------------------------------ additive and gating attention
  nb::class_<ops::AdditiveAttentionResult>(m, "AdditiveAttentionResult")
      .def_prop_ro("y", [](const ops::AdditiveAttentionResult& r) { return r.y; })
      .def_prop_ro("weights", [](const ops::AdditiveAttentionResult& r) { return r.weights; });
  nb::class_<ops::AdditiveAttentionGrads>(m, "AdditiveAttentionGrads")
      .def_prop_ro("dx", [](const ops::AdditiveAttentionGrads& g) { return g.dx; })
      .def_prop_ro("dw", [](const ops::AdditiveAttentionGrads& g) { return g.dw; })
      .def_prop_ro("db", [](const ops::AdditiveAttentionGrads& g) { return defined_or_none(g.db); });
  const auto additive_options = [](bool return_sequences, double epsilon, const std::string& kernel) {
    ops::AdditiveAttentionOptions o;
    o.return_sequences = return_sequences, o.epsilon = epsilon, o.kernel = parse_kernel(kernel);
    return o;
  };
  m.def("additive_attention",
        [additive_options](const Tensor& x, const Tensor& w, std::optional<Tensor> b, std::optional<Tensor> mask,
                           bool return_sequences, double epsilon, const std::string& kernel) {
          return ops::additive_attention(x, w, opt(b), opt(mask), additive_options(return_sequences, epsilon, kernel));
        },
        "x"_a, "w"_a, "b"_a = nb::none(), "mask"_a = nb::none(), nb::kw_only(), "return_sequences"_a = false,
        "epsilon"_a = 1e-7, "kernel"_a = "fused",
        "Additive tanh-softmax pooling (attention.h, 1.): x [B, T, D], w [D], b [T], mask u8 [B, T].");
  m.def("additive_attention_supports",
        [additive_options](const Tensor& x, const Tensor& w, std::optional<Tensor> b, std::optional<Tensor> mask,
                           bool return_sequences, double epsilon, const std::string& kernel) {
          return ops::additive_attention_supports(x, w, opt(b), opt(mask),
                                                  additive_options(return_sequences, epsilon, kernel));
        },
        "x"_a, "w"_a, "b"_a = nb::none(), "mask"_a = nb::none(), nb::kw_only(), "return_sequences"_a = false,
        "epsilon"_a = 1e-7, "kernel"_a = "fused");
  m.def("additive_attention_backward",
        [additive_options](const Tensor& x, const Tensor& w, std::optional<Tensor> b, const Tensor& weights,
                           const Tensor& dy, bool return_sequences, double epsilon, const std::string& kernel) {
          return ops::additive_attention_backward(x, w, opt(b), weights, dy,
                                                  additive_options(return_sequences, epsilon, kernel));
        },
        "x"_a, "w"_a, "b"_a.none(), "weights"_a, "dy"_a, nb::kw_only(), "return_sequences"_a = false,
        "epsilon"_a = 1e-7, "kernel"_a = "fused");
  nb::class_<ops::GatingResult>(m, "GatingResult")
      .def_prop_ro("y", [](const ops::GatingResult& r) { return r.y; })
      .def_prop_ro("probs", [](const ops::GatingResult& r) { return r.probs; });
  nb::class_<ops::GatingGrads>(m, "GatingGrads")
      .def_prop_ro("dx", [](const ops::GatingGrads& g) { return g.dx; })
      .def_prop_ro("dweight", [](const ops::GatingGrads& g) { return g.dweight; })
      .def_prop_ro("dbias", [](const ops::GatingGrads& g) { return defined_or_none(g.dbias); });
  m.def("gating_attention",
        [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias, const std::string& kernel) {
          return ops::gating_attention(x, weight, opt(bias), parse_kernel(kernel));
        },
        "x"_a, "weight"_a, "bias"_a = nb::none(), nb::kw_only(), "kernel"_a = "fused",
        "Dense-softmax gating over features (attention.h, 2.): y = x softmax(x weight + bias).");
  m.def("gating_attention_backward",
        [](const Tensor& x, const Tensor& weight, const Tensor& probs, const Tensor& dy, bool has_bias,
           const std::string& kernel) {
          return ops::gating_attention_backward(x, weight, probs, dy, has_bias, parse_kernel(kernel));
        },
        "x"_a, "weight"_a, "probs"_a, "dy"_a, nb::kw_only(), "has_bias"_a = true, "kernel"_a = "fused");
  m.def("gating_attention_supports",
        [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias, const std::string& kernel) {
          return ops::gating_attention_supports(x, weight, opt(bias), parse_kernel(kernel));
        },
        "x"_a, "weight"_a, "bias"_a = nb::none(), nb::kw_only(), "kernel"_a = "fused");
  m.def("temporal_gating_attention_supports",
        [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias, bool single_vector,
           const std::string& kernel) {
          return ops::temporal_gating_attention_supports(x, weight, opt(bias), single_vector, parse_kernel(kernel));
        },
        "x"_a, "weight"_a, "bias"_a = nb::none(), nb::kw_only(), "single_vector"_a = false, "kernel"_a = "fused");
  m.def("temporal_gating_attention",
        [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias, bool single_vector,
           const std::string& kernel) {
          return ops::temporal_gating_attention(x, weight, opt(bias), single_vector, parse_kernel(kernel));
        },
        "x"_a, "weight"_a, "bias"_a = nb::none(), nb::kw_only(), "single_vector"_a = false, "kernel"_a = "fused",
        "Dense-softmax gating over time (attention.h, 3.): x [B, T, D], weight [T, T].");
  m.def("temporal_gating_attention_backward",
        [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias, const Tensor& dy, bool single_vector,
           const std::string& kernel) {
          return ops::temporal_gating_attention_backward(x, weight, opt(bias), dy, single_vector, parse_kernel(kernel));
        },
        "x"_a, "weight"_a, "bias"_a.none(), "dy"_a, nb::kw_only(), "single_vector"_a = false, "kernel"_a = "fused");

  python::bind_ops(m);
  python::bind_layers(m);
  python::bind_models(m);
  python::bind_text(m);
}
