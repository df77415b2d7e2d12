#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-perplexity from the llama.cpp sources that the
# PyPI sdist of llama-cpp-python vendors (no GitHub access needed), for the side-by-side
# benchmarks in bench/local/. x86-64 with AVX2/AVX512(-VNNI/-BF16/-VBMI) but no AMX: on
# this kind of VM the CPU reports AMX yet AMX instructions die with SIGILL, and a
# GGML_NATIVE build (-march=native) compiles ggml's AMX kernels in regardless of the
# GGML_AMX_* options.
# usage: bench/local/build_llamacpp.sh [BUILD_DIR]   (default ~/.cache/podium/llama.cpp-build)
set -euo pipefail
out=${1:-$HOME/.cache/podium/llama.cpp-build}
version=0.3.36
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --no-deps --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$work" -q
tar xzf "$work"/llama_cpp_python-$version.tar.gz -C "$work"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
# cmake from PyPI if the system has none.
cmake=$(command -v cmake || true)
if [ -z "$cmake" ]; then
  python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q cmake
  cmake="$work/venv/bin/cmake"
fi
"$cmake" -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
"$cmake" --build "$out" --target llama-bench llama-perplexity -j"$(nproc)"
echo "built: $out/bin/llama-bench $out/bin/llama-perplexity (llama.cpp from llama-cpp-python $version)"
