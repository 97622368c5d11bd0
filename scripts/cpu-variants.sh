# Sourced by build-engine.sh and build-llama-server.sh, which build llama.cpp with every x86 CPU
# variant (the best one for the CPU is loaded at run time) and OpenMP.
#
# test_variants DIR COMMAND...: runs COMMAND, a test run of the new build. When it fails, drops the
# AMX variant from DIR and runs it again: OpenMP's worker threads crash in ggml's AMX matmul on some
# virtual machines (SIGILL/SIGSEGV seen on a Sapphire Rapids guest), and the next best variant
# (AVX-512 without AMX) serves instead.
test_variants() {
  local dir=$1
  shift
  "$@" >&2 && return 0
  echo "the test run of the new build failed; dropping its AMX CPU variant and trying again" >&2
  rm -f "$dir"/libggml-cpu-sapphirerapids.so
  "$@" >&2 || { echo "the test run of the new build still fails: $*" >&2; return 1; }
}
