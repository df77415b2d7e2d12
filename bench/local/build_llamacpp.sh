#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-perplexity from the llama.cpp sources that the
# PyPI sdist of llama-cpp-python vendors (no GitHub access needed), for the side-by-side
# benchmarks in bench/local/. Native CPU flags, but AMX off: a native build on a CPU that
# reports AMX can die with SIGILL in AMX code on this kind of VM.
# usage: bench/local/build_llamacpp.sh [BUILD_DIR]   (default ~/.cache/podium/llama.cpp-build)
set -euo pipefail
out=${1:-$HOME/.cache/podium/llama.cpp-build}
version=0.3.36
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work" -q
tar xzf "$work"/llama_cpp_python-$version.tar.gz -C "$work"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
# cmake from PyPI if the system has none.
cmake=$(command -v cmake || true)
if [ -z "$cmake" ]; then
  python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q cmake
  cmake="$work/venv/bin/cmake"
fi
"$cmake" -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
"$cmake" --build "$out" --target llama-bench llama-perplexity -j"$(nproc)"
echo "built: $out/bin/llama-bench $out/bin/llama-perplexity (llama.cpp from llama-cpp-python $version)"
