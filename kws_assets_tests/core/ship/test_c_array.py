"""The .tflite bytes as C source: compiled by gcc (C99, C11) and g++, bytes and labels intact."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from kws_assets.core.ship.c_array import (
    TFLITE_C_HEADER_FILE,
    TFLITE_C_SOURCE_FILE,
    c_string,
    model_c_files,
    write_tflite_c_files,
)

MAIN_C = r"""
#include <stdio.h>
#include <stdint.h>
#include "model_tflite.h"
int main(void) {
  unsigned int i;
  printf("%u %d %lu %d\n", kws_model_len, KWS_MODEL_NUM_LABELS,
         (unsigned long)((uintptr_t)kws_model % 16u), KWS_MODEL_N_FRAMES);
  for (i = 0; i < KWS_MODEL_NUM_LABELS; ++i) printf("%s\n", kws_model_labels[i]);
  printf("%.7g\n", kws_model_mfcc_mean[0]);
  for (i = 0; i < kws_model_len; ++i) printf("%02x", kws_model[i]);
  printf("\n");
  return 0;
}
"""
HOSTILE_LABELS = ["_silence_", "_unknown_", 'say "hi"??/', "caf\u00e9 */ x"]


def _compile_and_run(
    compiler: str, flags: list[str], folder, tmp_path, source_ext: str
) -> list[str]:
    main = tmp_path / f"main{source_ext}"
    main.write_text(MAIN_C)
    source = folder / TFLITE_C_SOURCE_FILE
    if source_ext == ".cc":
        cc_copy = tmp_path / "model_tflite.cc"
        cc_copy.write_text(source.read_text())
        source = cc_copy
    binary = tmp_path / f"check{source_ext.strip('.')}"
    subprocess.run(
        [
            compiler,
            *flags,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(folder),
            str(main),
            str(source),
            "-o",
            str(binary),
        ],
        check=True,
    )
    return (
        subprocess.run([str(binary)], capture_output=True, check=True)
        .stdout.decode("utf-8")
        .splitlines()
    )


@pytest.mark.parametrize(
    "compiler,flags,ext",
    [("gcc", ["-std=c99"], ".c"), ("gcc", ["-std=c11"], ".c"), ("g++", ["-std=c++11"], ".cc")],
)
def test_c_array_holds_the_tflite_bytes(ship_model, tmp_path, compiler, flags, ext) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"no {compiler} on this machine (.ci/system-deps installs gcc)")
    folder = tmp_path / "device"
    header, source = write_tflite_c_files(
        folder, ship_model.tflite, HOSTILE_LABELS, ship_model.spec
    )
    assert header.name == TFLITE_C_HEADER_FILE and source.name == TFLITE_C_SOURCE_FILE
    out = _compile_and_run(compiler, flags, folder, tmp_path, ext)
    model = ship_model.tflite.read_bytes()
    assert out[0].split() == [
        str(len(model)),
        str(len(HOSTILE_LABELS)),
        "0",
        str(ship_model.spec.n_frames),
    ]
    assert out[1 : 1 + len(HOSTILE_LABELS)] == HOSTILE_LABELS
    assert float(out[-2]) == pytest.approx(ship_model.spec.mean[0], rel=1e-6)
    printed = bytes.fromhex(out[-1])
    assert hashlib.sha256(printed).hexdigest() == hashlib.sha256(model).hexdigest()


def test_c_writer_rejects_bad_input(ship_model) -> None:
    with pytest.raises(ValueError, match="C identifier"):
        model_c_files(b"\x00", ["a", "b"], ship_model.spec, symbol="kws-model")
    with pytest.raises(ValueError, match="no model bytes"):
        model_c_files(b"", ["a", "b"], ship_model.spec)
    with pytest.raises(ValueError, match="header file name"):
        model_c_files(b"\x00", ["a", "b"], ship_model.spec, header_name='../x".h')
    assert c_string("a??/b") == '"a\\077\\077/b"'
