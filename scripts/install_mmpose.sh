#!/usr/bin/env bash
# Install the optional MMPose 2D backend (`--detector mmpose`) into the current Python.
#
# Usage: scripts/install_mmpose.sh [--wheels DIR]
#
# Why a script and not just `pip install -e .[mmpose]` (see docs/mmpose.md):
#   * mmengine, mmcv and mmpose declare `opencv-python`; video3d already ships cv2
#     via opencv-contrib-python (the distribution mediapipe needs). Two cv2
#     distributions overwrite each other, so every OpenMMLab package goes in with
#     --no-deps and its real dependencies come from the `mmpose` extra.
#   * mmpose also declares `chumpy`, which fails to build and is never imported.
#   * mmcv 2.1.0 has no wheel for torch 2.13 on the registry: it is compiled
#     (17-20 min on 2 cores) unless a prebuilt wheel is found in the shared wheel
#     directory (default: ../shared/wheels beside the repository). Its build needs
#     setuptools<81 and --no-build-isolation (it imports torch and pkg_resources).
#   * The registry's xtcocotools 1.14.3 wheel was built against numpy 1 and fails
#     with numpy 2 ("numpy.dtype size changed"): it is taken from the shared wheel
#     directory or built from source, never from the registry's wheel.
#     With a CUDA torch, mmcv is always compiled (the shared wheel has CPU ops only).
#   * The registry's torchvision is a CUDA build: installed with --no-deps so it
#     can never pull a CUDA torch (the CPU-torch import shim lives in
#     video3d/detect/mmpose.py).
# torch, numpy and the installed opencv distribution are pinned to their current
# versions with a constraints file, so no step can change them.
# Re-running is safe: pinned packages that are already present are kept.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="${ROOT}/../shared/wheels"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --wheels) WHEELS="$2"; shift 2 ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) echo "install_mmpose: unknown argument: $1" >&2; exit 2 ;;
    esac
done

PY="${PYTHON:-python}"
MMENGINE=0.10.7
MMCV=2.1.0
MMDET=3.3.0
MMPOSE=1.3.2
XTCOCOTOOLS=1.14.3
TORCHVISION=0.28.0

step() { echo; echo "==> $*"; }
run() { echo "+ $*"; "$@"; }

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
"$PY" - "$CONSTRAINTS" <<'PYEOF'
import sys
from importlib import metadata
pins = []
for name in ("torch", "numpy", "opencv-python", "opencv-contrib-python",
             "opencv-python-headless", "opencv-contrib-python-headless"):
    try:
        pins.append(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
PYEOF
PIP=("$PY" -m pip install -c "$CONSTRAINTS")
echo "install_mmpose: python $("$PY" -c 'import sys; print(sys.version.split()[0])'), keeping: $(tr '\n' ' ' < "$CONSTRAINTS")"

USE_WHEELS=0
if [[ -d "$WHEELS" ]]; then
    WHEELS="$(cd "$WHEELS" && pwd)"
    USE_WHEELS=1
    echo "install_mmpose: using prebuilt wheels from $WHEELS"
else
    echo "install_mmpose: no wheel directory at $WHEELS: mmcv and xtcocotools will be compiled (about 20 minutes)"
fi

step "1/5 build tools (setuptools<81 is also needed at run time: mmengine imports pkg_resources)"
run "${PIP[@]}" "setuptools>=64,<81" wheel "cython>=0.29"

step "2/5 video3d with the [mmpose] extra (pure-Python dependencies of the OpenMMLab stack)"
run "${PIP[@]}" -e "${ROOT}[mmpose]"

step "3/5 torchvision ${TORCHVISION} without dependencies (never pull a CUDA torch)"
run "${PIP[@]}" --no-deps "torchvision==${TORCHVISION}"

step "4/5 mmengine ${MMENGINE}, mmdet ${MMDET}, mmpose ${MMPOSE} without dependencies"
run "${PIP[@]}" --no-deps "mmengine==${MMENGINE}" "mmdet==${MMDET}" "mmpose==${MMPOSE}"

# Compiled packages: kept when the pinned version is installed and its compiled
# module imports; otherwise a prebuilt wheel from $WHEELS when it has one for
# this Python, otherwise a source build against the installed torch/numpy.
# (Plain --find-links is not enough: pip prefers the registry's manylinux wheel
# over a linux_x86_64 wheel of the same version, hence --no-index.)
install_compiled() {  # name version compiled-module [wheels-allowed: 1|0]
    local name="$1" version="$2" module="$3" wheels_ok="${4:-1}" force=()
    if "$PY" -c "from importlib.metadata import version; assert version('${name}') == '${version}'" 2>/dev/null; then
        if "$PY" -c "import ${module}" 2>/dev/null; then
            echo "install_mmpose: ${name} ${version} already installed and working"
            return 0
        fi
        echo "install_mmpose: ${name} ${version} is installed but 'import ${module}' fails: reinstalling"
        force=(--force-reinstall)
    fi
    if [[ "$USE_WHEELS" == 1 && "$wheels_ok" == 1 ]] && \
        run "${PIP[@]}" --no-deps "${force[@]}" --no-index --find-links "$WHEELS" "${name}==${version}"; then
        return 0
    fi
    if [[ "$USE_WHEELS" == 1 ]]; then
        echo "install_mmpose: not using a ${name} wheel from $WHEELS: building from source"
    fi
    run "${PIP[@]}" --no-deps "${force[@]}" --no-build-isolation --no-binary "$name" "${name}==${version}"
}

step "5/5 compiled packages: mmcv ${MMCV} (full, with ops) and xtcocotools ${XTCOCOTOOLS}"
# The shared mmcv wheel has CPU ops only (built against torch 2.13.0+cpu); with a
# CUDA torch, mmcv is compiled so that its ops also run on the GPU.
TORCH_CUDA="$("$PY" -c 'import torch; print(torch.version.cuda or "")')"
if [[ -n "$TORCH_CUDA" ]]; then
    echo "install_mmpose: torch has CUDA ${TORCH_CUDA}: compiling mmcv with CUDA ops"
    MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS="${MAX_JOBS:-2}" install_compiled mmcv "$MMCV" mmcv._ext 0
else
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" install_compiled mmcv "$MMCV" mmcv._ext
fi
install_compiled xtcocotools "$XTCOCOTOOLS" xtcocotools._mask

step "check: import the stack the way video3d does"
run "$PY" -c "from video3d.detect.mmpose import check_install; print(check_install())"
echo
echo "install_mmpose: done. Try: video3d run VIDEO --detector mmpose"
