# Warnings and code generation for attnkit's own targets (not for consumers of the package).
# -fno-trapping-math and -fno-math-errno: attnkit never reads floating-point exception flags or
# errno, and the compiler may then compute both sides of a select and use sqrt instructions, so
# that loops such as the recurrent cells' (cpu/fast_math.h) and Adam's vectorize; results are
# the same. -fopenmp-simd reads the `omp simd` hints on loops (no OpenMP runtime: threads are
# attnkit's own, src/cpu/thread_pool.cpp).
function(attnkit_set_compile_options target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter -fno-trapping-math -fno-math-errno -fopenmp-simd>)
  if(ATTNKIT_NATIVE_ARCH)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
endfunction()
