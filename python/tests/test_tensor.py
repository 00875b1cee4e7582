"""attnkit.Tensor and NumPy: the same memory both ways (DLPack), dtypes and shapes kept, memory
kept alive by whichever side outlives the other, and clear errors for what attnkit does not take."""
import gc

import numpy as np
import pytest

import attnkit

DTYPES = [(np.float32, "f32"), (np.float64, "f64"), (np.float16, "f16"), (np.int32, "i32"), (np.uint8, "u8")]


@pytest.mark.parametrize("numpy_dtype,name", DTYPES)
def test_numpy_round_trip_shares_memory_and_keeps_dtype_and_shape(numpy_dtype, name):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 5, 7)) * 50).astype(numpy_dtype)
    tensor = attnkit.from_dlpack(array)
    assert (tensor.shape, tensor.dtype, tensor.device) == ([3, 5, 7], name, "cpu")
    back = np.from_dlpack(tensor)
    assert back.dtype == numpy_dtype and back.shape == (3, 5, 7)
    assert np.shares_memory(back, array)
    np.testing.assert_array_equal(back, array)
    np.testing.assert_array_equal(tensor.numpy(), array)
    assert tensor.__dlpack_device__() == (1, 0)


def test_bool_arrays_come_in_as_bytes():
    mask = np.array([[True, False, True]])
    tensor = attnkit.from_dlpack(mask)
    assert tensor.dtype == "u8"
    np.testing.assert_array_equal(tensor.numpy(), [[1, 0, 1]])


def test_writes_through_either_side_are_seen_by_the_other():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensor = attnkit.Tensor(array)
    array[1, 2] = -7.5
    assert tensor.numpy()[1, 2] == -7.5
    tensor.numpy()[0, 0] = 42.0
    assert array[0, 0] == 42.0


def test_memory_lives_as_long_as_the_last_side():
    array = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    expected = array.copy()
    tensor = attnkit.from_dlpack(array)
    del array
    gc.collect()
    np.testing.assert_array_equal(tensor.numpy(), expected)  # the array is kept by the tensor

    result = attnkit.scaled_dot_product_attention(tensor.reshape([1, 4, 6]), tensor.reshape([1, 4, 6]),
                                                  tensor.reshape([1, 4, 6]))
    out = np.from_dlpack(result.out)
    expected_out = out.copy()
    del result, tensor
    gc.collect()
    np.testing.assert_array_equal(out, expected_out)  # the tensor is kept by the array


def test_conversions_and_views():
    array = np.linspace(-3, 3, 24, dtype=np.float64).reshape(2, 3, 4)
    tensor = attnkit.from_dlpack(array)
    as_f32 = tensor.to("f32")
    assert as_f32.dtype == "f32"
    np.testing.assert_allclose(as_f32.numpy(), array, rtol=1e-7)
    assert not np.shares_memory(as_f32.numpy(), array)
    on_sim = tensor.to("sim")
    assert on_sim.device == "sim"
    np.testing.assert_array_equal(on_sim.to("cpu").numpy(), array)
    assert tensor.reshape([6, -1]).shape == [6, 4]
    assert len(tensor) == 2 and tensor.numel() == 24 and tensor.ndim == 3
    zeros = attnkit.zeros([2, 2], "i32")
    np.testing.assert_array_equal(zeros.numpy(), np.zeros((2, 2), np.int32))


def test_what_attnkit_does_not_take_is_refused_with_the_reason():
    array = np.ones((4, 6), np.float32)
    with pytest.raises(attnkit.Error, match="contiguous row-major arrays.*stride 2 on axis 1"):
        attnkit.from_dlpack(array[:, ::2])
    with pytest.raises(attnkit.Error, match="contiguous row-major arrays"):
        attnkit.from_dlpack(array.T)
    with pytest.raises(attnkit.Error, match="attnkit takes float32, float64, float16, bfloat16, int32, uint8 and bool"):
        attnkit.from_dlpack(np.ones(3, np.int64))
    with pytest.raises(attnkit.Error, match="has no DLPack device"):
        np.from_dlpack(attnkit.from_dlpack(array).to("sim"))
    with pytest.raises(attnkit.Error, match="unknown dtype"):
        attnkit.zeros([2], "f8")
    # An op's argument that is not an array at all.
    with pytest.raises(TypeError):
        attnkit.scaled_dot_product_attention([1.0], array, array)


def test_dlpack_export_refuses_a_copy_or_another_device():
    tensor = attnkit.from_dlpack(np.ones(3, np.float32))
    with pytest.raises(attnkit.Error, match="exports its memory as it is"):
        tensor.__dlpack__(copy=True)
    with pytest.raises(attnkit.Error, match="the tensor is on cpu"):
        tensor.__dlpack__(dl_device=(2, 0))
    assert type(tensor.__dlpack__(dl_device=(1, 0))).__name__ == "PyCapsule"
