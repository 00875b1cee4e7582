# ATTNKIT_SANITIZE: every target (the library, its tests and programs) with AddressSanitizer and
# UndefinedBehaviorSanitizer; undefined behaviour stops the program like a memory error does.
# ATTNKIT_FUZZ: clang's coverage instrumentation for libFuzzer on every target, except the
# numeric sources of fuzz_coverage_ignorelist.txt, and the fuzz targets of fuzz/ (which link
# libFuzzer itself). Both are for builds without CUDA (scripts/sanitize.sh).
if(ATTNKIT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(ATTNKIT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "attnkit: ATTNKIT_FUZZ needs clang (CXX=clang++), got ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link
                      -fsanitize-coverage-ignorelist=${CMAKE_CURRENT_LIST_DIR}/fuzz_coverage_ignorelist.txt)
endif()
