"""The one default INT8 accuracy bound: how many percentage points of top-1 accuracy (on the test set,
against the FP32 model) a quantized file may lose before edgecnn calls it out.

Used by `edgecnn export` for every quantized variant (model.int8.onnx and each --int8-recipes file),
by `--quantize auto` (which never picks a variant outside it), by the accuracy-aware INT8 search (which
tries other settings until a file is inside it) and by `edgecnn tune` (which rejects a faster file
that loses more on the device). `--max-accuracy-drop` replaces it; given explicitly it is also
enforced: files outside it are not written and export exits 1. Under the default, a file outside it
is kept, marked `within_bound: false` in the table and export.json, with its worst layers (SQNR).

Why 0.3 pp: INT8 of a small CNN calibrated on real images lands within ~0.1 pp of FP32 (measured on
the zoo in docs/bench-zoo.md), so a 0.3 pp loss is a sign that some layer quantizes badly; on a
10,000-image test set it is 30 images, well above the run-to-run noise of one calibration.
"""

from __future__ import annotations

DEFAULT_MAX_ACCURACY_DROP_PP = 0.3
