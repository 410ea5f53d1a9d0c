#!/bin/bash
# The script of docs/gpu-check-h200.md, run on a GPU machine without TensorFlow or package access:
# gpuprep/ holds bundle/, bundle-trt/ and mnist/ (exported and copied on the workstation), and
# /root/gp/ the onnxruntime-gpu wheel in five split(1) parts (partaa..partae), carried one per call.
set -u
cp .gpuw/*/part* /root/gp/ 2>/dev/null
ls -la /root/gp
cat /root/gp/partaa /root/gp/partab /root/gp/partac /root/gp/partad /root/gp/partae > /root/gp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site /root/gp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl || exit 3
export PYTHONPATH=/tmp/site EDGECNN_DATA_DIR=$PWD/gpuprep/mnist EDGECNN_PYTHON=$(command -v python3) PYTHONUNBUFFERED=1
# CUDA 13 libraries from the image's pip packages (nvidia-*), where ORT's CUDA EP looks for them
export LD_LIBRARY_PATH=$(python3 - <<'P'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
P
):${LD_LIBRARY_PATH:-}
nvidia-smi -L
python3 -c "import onnxruntime as o; print('ort', o.__version__, o.__file__, o.get_available_providers())"
python3 -m edgecnn.cli doctor 2>&1 | tail -40
python3 benchmarks/gpu_check.py --bundle gpuprep/bundle --log $OUT/gpu-check.log 2>&1 | tee $OUT/gpu-check.txt
for dev in cuda tensorrt; do
  echo "== bench int8 on $dev (QDQ int8 without --allow-cpu-nodes)"
  python3 -m edgecnn.cli bench gpuprep/bundle/model.int8.onnx --device $dev --batch 1,64 -n 50 -o $OUT/b-int8-$dev --force 2>&1 | tail -8; echo "exit $?"
done
echo "== predict + eval on cuda, fp32 and fp16"
python3 -m edgecnn.cli eval gpuprep/bundle/model.fp16.onnx --device cuda --limit 2000 -o $OUT/eval-fp16 --force 2>&1 | tail -8
python3 -m edgecnn.cli bench gpuprep/bundle/model.onnx gpuprep/bundle/model.fp16.onnx --device cuda --batch 1,64,256 -n 200 -o $OUT/bench-cuda --force 2>&1 | tail -25
cp -r $OUT/bench-cuda/*.json $OUT/ 2>/dev/null; rm -rf $OUT/b-int8-* $OUT/eval-fp16
