# Decides whether the CUDA backend is built, and for which GPU architectures.
#
# ATTNKIT_CUDA=AUTO builds it when a CUDA compiler is found (no GPU is needed to compile),
# ON requires it, OFF skips it. The architectures default to sm_80 and sm_90 (A100, H100);
# set CMAKE_CUDA_ARCHITECTURES to choose others, e.g. -DCMAKE_CUDA_ARCHITECTURES=native.
set(ATTNKIT_WITH_CUDA OFF)
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
    message(STATUS "attnkit: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(ATTNKIT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "attnkit: ATTNKIT_CUDA=ON but no CUDA compiler was found (set CUDACXX or put nvcc on PATH)")
  else()
    message(STATUS "attnkit: CUDA backend OFF (no CUDA compiler found)")
  endif()
endif()
