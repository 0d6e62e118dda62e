#!/usr/bin/env bash
# Install llama-cpp-python into a venv from a portable build, never from pip's wheel cache.
#
# Why: llama.cpp's default build is GGML_NATIVE=ON (-march=native). On a cloud VM whose CPU
# advertises AMX or AVX-512 it compiles those kernels, and the process later dies with SIGILL
# when the hypervisor refuses them. pip's wheel cache is keyed by the source, not by
# CMAKE_ARGS, so once such a wheel is cached, every later `pip install` gets it again.
#
# What: build the wheel once with fixed flags (x86-64-v3: AVX2/FMA/F16C/BMI2, no AVX-512, no
# AMX; the compiler's generic baseline on aarch64 and others) into a folder keyed by the
# version, the architecture and a hash of the flags, then install that file. pip's own cache
# is neither read nor written for it. Only the libraries the Python package loads are built
# (no llava/mtmd, no llama.cpp examples, tools or server binaries).
#
# Usage: scripts/install-llama.sh VENV VERSION
# Env:   AGENT_BUDGET_WHEELS  where built wheels are kept (default: ~/.cache/agent-budget/wheels)
#        LLAMA_EXTRA_CMAKE_ARGS  appended to the flags (they are part of the key)
set -euo pipefail
venv=${1:?usage: install-llama.sh VENV VERSION}
version=${2:?usage: install-llama.sh VENV VERSION}
py="$venv/bin/python"

case "$(uname -m)" in
  x86_64 | amd64)
    arch=x86_64-v3
    flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    flags+=" -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF"
    flags+=" -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    ;;
  aarch64 | arm64)
    arch=aarch64
    flags="-DGGML_NATIVE=OFF"
    ;;
  *)
    arch=$(uname -m)
    flags="-DGGML_NATIVE=OFF"
    ;;
esac
flags+=" -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
flags+=" -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF ${LLAMA_EXTRA_CMAKE_ARGS:-}"

key=$(printf '%s' "$flags" | cksum | cut -d' ' -f1)
root=${AGENT_BUDGET_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/agent-budget/wheels}
dir="$root/llama-cpp-python-$version-$arch-$key"

wheel() { ls "$dir"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n1; }

if [ -z "$(wheel)" ]; then
  echo "Building llama-cpp-python $version for $arch (portable flags; a few minutes, once)..."
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  start=$(date +%s)
  CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
    "$py" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python==$version" -w "$tmp"
  printf '%s\n' "$flags" >"$tmp/CMAKE_ARGS"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "Built in $(($(date +%s) - start)) s: $(wheel)"
fi

# The package's own dependencies (and the [server] extra) come from the index as usual;
# the package itself always from the portable wheel, replacing whatever was there.
"$py" -m pip install -q "$(wheel)[server]"
"$py" -m pip install -q --force-reinstall --no-deps "$(wheel)"
printf '%s\n' "$dir" >"$venv/.llama-portable"
