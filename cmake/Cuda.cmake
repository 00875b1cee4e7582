# Decides whether the CUDA backend is built, and for which GPU architectures.
#
# ATTNKIT_CUDA=AUTO builds it when a CUDA compiler is found (no GPU is needed to compile), ON
# requires one, OFF skips it. cuDNN 9 serves the recurrent layers where it is found
# (ATTNKIT_CUDNN=AUTO; ON requires it, OFF leaves it out). The architectures default to sm_80
# and sm_90 (A100, H100); set CMAKE_CUDA_ARCHITECTURES to choose others, e.g.
# -DCMAKE_CUDA_ARCHITECTURES=native.
set(ATTNKIT_WITH_CUDA OFF)
set(ATTNKIT_WITH_CUDNN OFF)
set(ATTNKIT_CUDNN AUTO CACHE STRING "Use cuDNN for the recurrent layers on CUDA: AUTO (when found), ON or OFF")
set_property(CACHE ATTNKIT_CUDNN PROPERTY STRINGS AUTO ON OFF)
if(NOT ATTNKIT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    # The toolkit's usual home, for shells whose PATH does not name it.
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(ATTNKIT_WITH_CUDA ON)
    # cuDNN (the recurrent layers; without it they run attnkit's own step kernels): beside the
    # toolkit, in the system, or where ATTNKIT_CUDNN_ROOT says (e.g. the nvidia/cudnn directory
    # of Python's nvidia-cudnn wheel).
    set(ATTNKIT_CUDNN_ROOT "" CACHE PATH "Where cuDNN's include/ and lib/ are, when not beside the CUDA toolkit")
    if(NOT ATTNKIT_CUDNN STREQUAL "OFF")
      find_path(ATTNKIT_CUDNN_INCLUDE_DIR cudnn.h
                HINTS ${ATTNKIT_CUDNN_ROOT}/include ${CUDAToolkit_INCLUDE_DIRS})
      find_library(ATTNKIT_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
                   HINTS ${ATTNKIT_CUDNN_ROOT}/lib ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib)
      if(ATTNKIT_CUDNN_INCLUDE_DIR AND ATTNKIT_CUDNN_LIBRARY)
        set(ATTNKIT_WITH_CUDNN ON)
      elseif(ATTNKIT_CUDNN STREQUAL "ON")
        message(FATAL_ERROR "attnkit: ATTNKIT_CUDNN=ON, but cuDNN 9 (cudnn.h and libcudnn) was not found beside the "
                            "CUDA toolkit: set ATTNKIT_CUDNN_ROOT")
      endif()
    endif()
    if(ATTNKIT_WITH_CUDNN)
      set(cudnn_note "cuDNN ${ATTNKIT_CUDNN_LIBRARY}")
    else()
      set(cudnn_note "no cuDNN: the recurrent layers run attnkit's own kernels")
    endif()
    message(STATUS "attnkit: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES}, ${cudnn_note})")
  elseif(ATTNKIT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "attnkit: ATTNKIT_CUDA=ON but no CUDA compiler was found (set CUDACXX or put nvcc on PATH)")
  else()
    message(STATUS "attnkit: CUDA backend OFF (no CUDA compiler found)")
  endif()
endif()
