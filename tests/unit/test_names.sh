#!/usr/bin/env bash
# Catch2 test names become ctest names through a CMake list: a ';' splits a
# test in two (each half then matches nothing) and a leading '-' is read as
# an option. Neither may appear.
cd "${1:?source dir}" || exit 2
bad=$(grep -rnE 'TEST_CASE\("(-|[^"]*;)' tests/ --include='*.cc')
if [ -n "$bad" ]; then echo "test names that ctest cannot run:"; echo "$bad"; exit 1; fi
echo "test names ok"
