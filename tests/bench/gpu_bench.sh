#!/usr/bin/env bash
# One 512² CFG step (SD1.5 UNet, batch 2, random full-size weights) on an NVIDIA GPU, timed
# for Easel's two GPU backends (candle on CUDA, wgpu on Vulkan) and for PyTorch's diffusers
# UNet (fp32 and fp16) on the same GPU, so the three can be compared side by side.
#
# The same call checks the GPU machine's host CPU, which is often an Intel Xeon with AMX
# that the build machine lacks: the CPU backend's kernel tests (each kernel the CPU can run
# against exact sums; AMX and AVX512-BF16 are skipped with a notice on CPUs without them),
# then one 512² CFG step on the CPU backend in bf16 and fp32 beside PyTorch's bf16 autocast
# and fp32, at 1 and 2 threads (CPU_BENCH=0 leaves the timings out; CPU_THREADS lists the
# thread counts).
#
# In two halves, because GPU machines often have no Rust toolchain and no network:
#
#   bash tests/bench/gpu_bench.sh prepare   # a build machine: writes .gpu/ (ignored by git)
#   bash tests/bench/gpu_bench.sh run       # the GPU machine, in a copy of the repo with .gpu/
#   bash tests/bench/gpu_bench.sh cpu       # only the host-CPU half: target/release/easel and
#                                           # .gpu/candle-tests.xz from prepare
#
# What `run` needs of .gpu/ is easel.xz, candle-tests.xz, deb/ and whl/ (about 20 MB); the
# rest (the nvcc venv, the stubs) stays on the build machine.
#
# prepare needs cargo, gcc, python3 and the package registries (PyPI, Debian). It takes
# nvcc from PyPI at CUDA_VERSION (default 13.0: match the GPU machine's toolkit; cudarc
# 0.19 knows 12.x and 13.0–13.4) and builds `easel` with `--features cuda` for
# CUDA_COMPUTE_CAP (default 90: H100/H200). The CUDA libraries easel links against (the
# driver, cuBLAS, cuBLASLt, cuRAND, NVRTC) are not downloaded: the link is made against
# stubs that carry their names and sonames, written from the symbols the link asks for, and
# the real libraries are loaded on the GPU machine (its driver; the nvidia-* Python packages
# that PyTorch installs, through LD_LIBRARY_PATH). It also fetches the Vulkan loader's
# Debian packages and a diffusers wheel, which `run` installs there.
#
# run needs the NVIDIA driver, and for the PyTorch rows python3 with torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=.gpu
CUDA_VERSION=${CUDA_VERSION:-13.0}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
STEPS=${STEPS:-10}
CPU_STEPS=${CPU_STEPS:-2}
CPU_THREADS=${CPU_THREADS:-1 2}
CPU_SIZE=${CPU_SIZE:-512}
# Cargo profile of the build (`dev` reuses a debug target's compiled kernels when checking
# the recipe; figures come from `release`).
PROFILE=${PROFILE:-release}

prepare() {
    mkdir -p "$GPU/deb" "$GPU/whl"
    [ -x "$GPU/venv/bin/pip" ] || python3 -m venv "$GPU/venv"
    local v="==${CUDA_VERSION}.*"
    "$GPU/venv/bin/pip" install -q "nvidia-cuda-nvcc$v" "nvidia-cuda-runtime$v" \
        "nvidia-cuda-crt$v" "nvidia-cuda-cccl$v" "nvidia-nvvm$v"
    local toolkit
    toolkit=$(ls -d "$GPU"/venv/lib/python3*/site-packages/nvidia/cu"${CUDA_VERSION%%.*}")
    toolkit=$(cd "$toolkit" && pwd)
    local stubs="$toolkit/lib/stubs"
    mkdir -p "$stubs"
    # name soname symbol-prefix: the libraries cudarc links, in the order a symbol is matched.
    local libs=(
        "cublasLt libcublasLt.so.${CUDA_VERSION%%.*} cublasLt"
        "cublas libcublas.so.${CUDA_VERSION%%.*} cublas"
        "curand libcurand.so.10 curand"
        "nvrtc libnvrtc.so.${CUDA_VERSION%%.*} nvrtc"
        "cuda libcuda.so.1 cu"
    )
    # Each symbol goes to the first library whose prefix it has.
    make_stubs() { # $1: file of symbol names, one per line (may be empty)
        local entry name soname prefix sym
        for entry in "${libs[@]}"; do
            read -r name _ _ <<<"$entry"
            : >"$GPU/stub_$name.c"
        done
        while read -r sym; do
            for entry in "${libs[@]}"; do
                read -r name _ prefix <<<"$entry"
                case "$sym" in "$prefix"*)
                    echo "void $sym(void) {}" >>"$GPU/stub_$name.c"
                    break
                    ;;
                esac
            done
        done <"$1"
        for entry in "${libs[@]}"; do
            read -r name soname _ <<<"$entry"
            gcc -shared -fPIC -Wl,-soname,"$soname" -o "$stubs/lib$name.so" "$GPU/stub_$name.c"
        done
    }
    : >"$GPU/symbols"
    make_stubs "$GPU/symbols"
    # candle's quantised kernels link the CUDA runtime, which PyPI's package holds as .so.N.
    ln -sf "$(cd "$toolkit/lib" && ls libcudart.so.* | head -1)" "$toolkit/lib/libcudart.so"
    local build=(cargo build --profile "$PROFILE" -p easel-cli --features cuda)
    export PATH="$toolkit/bin:$PATH" CUDA_PATH="$toolkit" CUDA_ROOT="$toolkit"
    # The linker names a few missing symbols per attempt (lld stops at 20 errors): stub
    # them and link again until it succeeds or names nothing new.
    until "${build[@]}" 2>"$GPU/link.log"; do
        local before
        before=$(wc -l <"$GPU/symbols")
        # GNU ld says "undefined reference to `X'", lld "undefined symbol: X".
        { cat "$GPU/symbols"; grep -o -E "undefined (reference to \`|symbol: )[A-Za-z0-9_]+" \
            "$GPU/link.log" | sed -E "s/.*(\`|: )//"; } | sort -u >"$GPU/symbols.new"
        mv "$GPU/symbols.new" "$GPU/symbols"
        if [ "$(wc -l <"$GPU/symbols")" = "$before" ]; then
            tail -40 "$GPU/link.log"
            exit 1
        fi
        echo "linking against stubs of $(wc -l <"$GPU/symbols") CUDA symbols"
        make_stubs "$GPU/symbols"
    done
    local out=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
    # Compressed: about 70 MB stripped, 13 MB as xz (what a copy to the GPU machine carries).
    strip -o "$GPU/easel" "$out/easel"
    xz -T0 -f "$GPU/easel"
    # The CPU backend's unit tests (kernels against exact sums), built without CUDA.
    local tests
    tests=$(cargo test --profile "$([ "$PROFILE" = dev ] && echo test || echo "$PROFILE")" \
        -p easel-candle --lib --no-run 2>&1 | grep -o -E '\((.*/deps/easel_candle-[0-9a-f]+)\)' |
        tr -d '()' | tail -1)
    strip -o "$GPU/candle-tests" "$tests"
    xz -T0 -f "$GPU/candle-tests"
    (cd "$GPU/deb" && apt-get download libvulkan1 >/dev/null)
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$GPU/whl" diffusers
    ls -la "$GPU/easel.xz" "$GPU/candle-tests.xz" "$GPU/deb" "$GPU/whl"
}

# The host CPU: kernel tests, then the CPU backend's step beside PyTorch's.
host_cpu() {
    local easel=$1
    { grep -o -w -E 'amx_bf16|amx_tile|avx512_bf16|avx512f' /proc/cpuinfo || echo 'no AVX-512 or AMX'; } | sort -u | tr '\n' ' '
    echo
    echo "== host CPU: easel-candle's kernel tests"
    local tests=/tmp/gpu-candle-tests
    xz -dc "$GPU/candle-tests.xz" >"$tests"
    chmod +x "$tests"
    "$tests" --test-threads 2 --nocapture 2>&1 | grep -E 'skipped|warning|panicked|test result' ||
        echo "kernel tests failed"
    [ "${CPU_BENCH:-1}" = 0 ] && return
    local threads
    for threads in $CPU_THREADS; do
        echo "== host CPU, $threads thread(s): easel bf16, easel fp32"
        for precision in bf16 fp32; do
            "$easel" bench --sizes "$CPU_SIZE" --steps "$CPU_STEPS" --threads "$threads" \
                --precision "$precision" 2>&1 | grep -E 'kernel|CFG step|RSS' || echo "easel $precision failed"
        done
        echo "== host CPU, $threads thread(s): PyTorch bf16 autocast, fp32"
        for bf16 in --bf16 ""; do
            python3 tests/bench/bench_torch.py --threads "$threads" --sizes "$CPU_SIZE" \
                --steps "$CPU_STEPS" $bf16 || echo "torch $bf16 failed"
        done
    done
}

run() {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    lscpu | grep -m1 'Model name' || true
    # The CUDA libraries PyTorch's packages hold (cuBLAS, cuRAND, NVRTC), for easel.
    local libs
    libs=$(python3 -c 'import nvidia, os; r = list(nvidia.__path__)[0]; print(":".join(sorted({d for d, _, fs in os.walk(r) if any(".so" in f for f in fs)})))' 2>/dev/null || true)
    export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    python3 -m pip install -q --no-index --no-deps --target /tmp/gpu-site "$GPU"/whl/*.whl
    export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
    local easel=/tmp/gpu-easel
    xz -dc "$GPU/easel.xz" >"$easel"
    chmod +x "$easel"
    echo "== easel --backend cuda"
    "$easel" bench --backend cuda --sizes 512 --steps "$STEPS" || echo "cuda backend failed"
    echo "== easel --backend wgpu"
    if ! ldconfig -p | grep -q libvulkan; then
        for f in "$GPU"/deb/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
    "$easel" bench --backend wgpu --adapter high-performance --sizes 512 --steps "$STEPS" ||
        echo "wgpu backend failed"
    echo "== PyTorch (diffusers UNet)"
    for half in "" --fp16; do
        python3 tests/bench/bench_torch.py --device cuda --sizes 512 --steps "$STEPS" $half ||
            echo "torch $half failed"
    done
    host_cpu "$easel"
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
# The host-CPU half alone, with the easel built here (target/release/easel) and the kernel
# tests prepare wrote.
cpu) host_cpu "${EASEL:-target/release/easel}" ;;
*) echo "usage: $0 prepare|run|cpu" >&2; exit 2 ;;
esac
