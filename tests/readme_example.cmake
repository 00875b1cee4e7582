# Fails unless README.md shows tests/consumer/main.cpp exactly, so the README's example is the
# program that the package tests build and run.
file(READ ${SOURCE_DIR}/README.md readme)
file(READ ${SOURCE_DIR}/tests/consumer/main.cpp consumer)
string(FIND "${readme}" "${consumer}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md does not show tests/consumer/main.cpp as it is")
endif()
