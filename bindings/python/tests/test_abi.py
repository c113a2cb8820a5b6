"""The ctypes declarations match include/aranya_quic.h: struct sizes and
field offsets as the C compiler sees them, constants, and every function."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aranya_quic import _ffi
from support import REPO_ROOT

HEADER = REPO_ROOT / "include" / "aranya_quic.h"
STRUCTS = {
    "aranya_quic_config": _ffi.aranya_quic_config,
    "aranya_quic_channel": _ffi.aranya_quic_channel,
    "aranya_quic_stats": _ffi.aranya_quic_stats,
    "aranya_quic_message": _ffi.aranya_quic_message,
    "aranya_quic_buf": _ffi.aranya_quic_buf,
    "aranya_quic_event": _ffi.aranya_quic_event,
    "aranya_quic_connection_info": _ffi.aranya_quic_connection_info,
}


def c_layout(tmp_path: Path) -> dict[str, int]:
    """``{"struct": size, "struct.field": offset, "struct.field#": size}`` from the C compiler."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "aranya_quic.h"', "int main(void) {"]
    for name, cls in STRUCTS.items():
        lines.append(f'printf("{name} %zu\\n", sizeof({name}));')
        for field, _ in cls._fields_:
            lines.append(f'printf("{name}.{field} %zu\\n", offsetof({name}, {field}));')
            lines.append(f'printf("{name}.{field}# %zu\\n", sizeof((({name} *)0)->{field}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", str(HEADER.parent), str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def test_struct_layouts_match_c(tmp_path: Path) -> None:
    want = c_layout(tmp_path)
    for name, cls in STRUCTS.items():
        assert ctypes.sizeof(cls) == want[name], name
        for field, ftype in cls._fields_:
            assert getattr(cls, field).offset == want[f"{name}.{field}"], f"{name}.{field}"
            assert ctypes.sizeof(ftype) == want[f"{name}.{field}#"], f"{name}.{field}"


def test_field_lists_match_header() -> None:
    text = HEADER.read_text()
    for name, cls in STRUCTS.items():
        body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), text, re.S)
        assert body, name
        no_comments = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
        fields = re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", no_comments)
        assert [f for f, _ in cls._fields_] == fields, name


def test_every_header_function_declared() -> None:
    text = HEADER.read_text()
    funcs = set(re.findall(r"^(?:int32_t|const char \*)\s*(aranya_quic_\w+)\(", text, re.M))
    assert funcs == set(_ffi.FUNCTIONS)
    lib = _ffi.lib()
    for name, (restype, argtypes) in _ffi.FUNCTIONS.items():
        fn = getattr(lib, name)
        assert fn.restype is restype and fn.argtypes == argtypes


def test_constants_match_header() -> None:
    text = HEADER.read_text()
    defines = dict(re.findall(r"^#define (ARANYA_QUIC_\w+)\s+(.+?)\s*(?:/\*.*)?$", text, re.M))
    defines.pop("ARANYA_QUIC_H", None)
    checked = 0
    for name, raw in defines.items():
        assert hasattr(_ffi, name), f"{name} not mirrored"
        value = raw.replace("u", "") if not raw.startswith('"') else raw
        if name == "ARANYA_QUIC_DISABLED":
            assert raw == "UINT32_MAX" and _ffi.ARANYA_QUIC_DISABLED == 2**32 - 1
        elif name == "ARANYA_QUIC_UNKNOWN":
            assert raw == "UINT64_MAX" and _ffi.ARANYA_QUIC_UNKNOWN == 2**64 - 1
        elif raw.startswith('"'):
            assert getattr(_ffi, name) == raw.strip('"')
        else:
            assert getattr(_ffi, name) == eval(value, {}), name  # simple integer expressions
        checked += 1
    assert checked > 40


def test_config_init_matches_python_init() -> None:
    """Config._to_c sets struct_size itself; it must equal what config_init
    (the header's macro: the sized call with the caller's sizeof) writes."""
    raw = _ffi.aranya_quic_config()
    size = ctypes.sizeof(raw)
    ctypes.memset(ctypes.byref(raw), 0xAB, size)
    assert _ffi.lib().aranya_quic_config_init_sized(ctypes.byref(raw), size) == _ffi.ARANYA_QUIC_OK
    assert raw.struct_size == size
    rest = ctypes.string_at(ctypes.addressof(raw) + 4, size - 4)
    assert rest == bytes(len(rest))
    assert _ffi.lib().aranya_quic_config_init_sized(None, size) == _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT
    # The plain symbol, for programs built against older headers, writes
    # no field added with the non-blocking calls.
    old = _ffi.aranya_quic_config.max_outbound_bytes_per_peer.offset
    ctypes.memset(ctypes.byref(raw), 0xAB, size)
    assert _ffi.lib().aranya_quic_config_init(ctypes.byref(raw)) == _ffi.ARANYA_QUIC_OK
    assert raw.struct_size == old
    assert ctypes.string_at(ctypes.addressof(raw) + old, size - old) == b"\xab" * (size - old)
    assert _ffi.lib().aranya_quic_config_init(None) == _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT


def _ctype_of(c_type: str) -> object:
    """The ctypes type the bindings use for a C parameter type of the header."""
    c_type = " ".join(c_type.replace("*", " * ").split())
    scalars = {
        "aranya_quic_t": _ffi.aranya_quic_t,
        "aranya_quic_t *": ctypes.POINTER(_ffi.aranya_quic_t),
        "uint32_t": ctypes.c_uint32,
        "int32_t": ctypes.c_int32,
        "size_t": ctypes.c_size_t,
        "void *": ctypes.c_void_p,
        "const char *": ctypes.c_char_p,
        "char *": ctypes.POINTER(ctypes.c_char),
        "const uint8_t *": ctypes.POINTER(ctypes.c_uint8),
        "uint8_t *": ctypes.POINTER(ctypes.c_uint8),
        "size_t *": ctypes.POINTER(ctypes.c_size_t),
        "uint64_t *": ctypes.POINTER(ctypes.c_uint64),
        "uint32_t *": ctypes.POINTER(ctypes.c_uint32),
        "int *": ctypes.POINTER(ctypes.c_int),
    }
    if c_type in scalars:
        return scalars[c_type]
    m = re.fullmatch(r"(?:const )?(aranya_quic_\w+) \*", c_type)
    assert m and m.group(1) in STRUCTS, f"unmapped C type {c_type!r}"
    return ctypes.POINTER(STRUCTS[m.group(1)])


def _param_types(params: str) -> list[object]:
    params = " ".join(params.split())
    if params == "void":
        return []
    # Drop each parameter's name: the last identifier.
    return [_ctype_of(re.sub(r"\w+$", "", p.strip())) for p in params.split(",")]


def test_function_parameters_match_header() -> None:
    """Every prototype's parameter types, in order, as the bindings declare them."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    protos = re.findall(r"^(int32_t|const char \*)\s*(aranya_quic_\w+)\(([^)]*)\);", text, re.M)
    assert len(protos) == len(_ffi.FUNCTIONS)
    for ret, name, params in protos:
        restype, argtypes = _ffi.FUNCTIONS[name]
        assert restype is (ctypes.c_int32 if ret == "int32_t" else ctypes.c_char_p), name
        assert argtypes == _param_types(params), name


def test_callback_typedefs_match_header() -> None:
    """The log callback's parameters; its ``const char *msg`` is deliberately
    ``c_void_p`` (read with its length, see _ffi)."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    m = re.search(r"typedef void \(\*aranya_quic_log_callback\)\(([^)]*)\);", text)
    assert m
    want = [ctypes.c_void_p if t is ctypes.c_char_p else t for t in _param_types(m.group(1))]
    assert list(_ffi.aranya_quic_log_callback._argtypes_) == want
    assert _ffi.aranya_quic_log_callback._restype_ is None
    assert _ffi.aranya_quic_config.log_callback.size == ctypes.sizeof(ctypes.c_void_p)

