#!/usr/bin/env bash
# Fixes the vendored github.com/modern-go/reflect2 v1.0.1 in Debian's kubernetes 1.20 source for Go >= 1.18,
# whose runtime changed reflect.mapiterinit to fill a caller-owned iterator instead of returning one.
# Without this the built kube-apiserver dies with `fatal error: fault` in UnsafeMapType.UnsafeIterate the
# first time it serialises a map (labels, annotations). The change mirrors what reflect2 v1.0.2 did:
# mapiterinit takes an out-parameter and hiter has the runtime's full layout.
# Usage: patch-reflect2.sh VENDOR_DIR/github.com/modern-go/reflect2   (idempotent)
set -euo pipefail
dir="$1"
python3 - "$dir" <<'PY'
import re, sys, pathlib
d = pathlib.Path(sys.argv[1])
link = d / "unsafe_link.go"
s = link.read_text()
if "checkBucket" not in s:
    s, n1 = re.subn(r"func mapiterinit\(rtype unsafe\.Pointer, m unsafe\.Pointer\) \*hiter",
                    "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)", s)
    s, n2 = re.subn(r"type hiter struct \{.*?\n\}", """type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}""", s, flags=re.S)
    if n1 != 1 or n2 != 1:
        sys.exit(f"patch-reflect2: unexpected {link} (mapiterinit {n1}, hiter {n2})")
    link.write_text(s)
m = d / "unsafe_map.go"
s = m.read_text()
if "var it hiter" not in s:
    old = """	return &UnsafeMapIterator{
		hiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),"""
    new = """	var it hiter
	mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)
	return &UnsafeMapIterator{
		hiter:      &it,"""
    if old not in s:
        sys.exit(f"patch-reflect2: unexpected {m}")
    m.write_text(s.replace(old, new))
PY
