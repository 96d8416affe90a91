"""The house's layers: no import cycle inside src/kmodel, and an engine that knows
nothing of Linux.

Imports are read from the source with ``ast`` (every import, at module level or inside a
function: an import inside a function that closes a cycle still ties the two modules
together).  The layers point one way: cli -> matrix -> api -> workers -> build -> spec,
errors; everything above ``linux/`` and ``engine/``; ``engine/`` imports nothing outside
itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "kmodel"

# The one import cycle that may stay, as the set of modules it runs through (a strongly
# connected component must lie within it): the generic KVM code calls the per-arch
# kvm_arch_* hooks, which call back into it -- this mirrors the kernel
# (virt/kvm/kvm_main.c <-> arch/*/kvm/mmu.c).  Any other cycle fails the test: the mm
# reference counts (include/sched_mm.py apart from kernel/fork.py's mmput) and the
# sleeping locks' shared waiter and killable wait (locking/lock_wait.py apart from rwsem.py
# and rwbase_rt.py) were untied so.
KNOWN_CYCLES = {
    "kvm-arch": {
        "kmodel.linux.virt.kvm.kvm_main",
        "kmodel.linux.arch.x86.kvm.mmu",
        "kmodel.linux.arch.arm64.kvm.mmu",
    },
}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The kmodel modules that ``name`` imports."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import sub": the submodule; "from mod import fn": the module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:          # "import a.b.c" of a name inside c
                t = t.rpartition(".")[0]
            if t.startswith(PACKAGE) and t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_imports_it_should():
    """The reader itself: known edges are found (else the tests below prove nothing)."""
    g = graph()
    assert "kmodel.api" in g["kmodel.cli"]
    assert "kmodel.matrix" in g["kmodel.cli"]
    assert "kmodel.workers" in g["kmodel.api"]
    assert "kmodel.build" in g["kmodel.workers.entry"]
    assert "kmodel.engine.ops" in g["kmodel.engine.execution"]
    assert "kmodel.linux.mm.kasan" in g["kmodel.linux.include.rwonce"]
    # a function-level import counts too
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle_inside_kmodel():
    bad = []
    for comp in cycles(graph()):
        if not any(comp <= allowed for allowed in KNOWN_CYCLES.values()):
            bad.append(" <-> ".join(sorted(comp)))
    assert not bad, "import cycles: " + "; ".join(bad)


def test_the_application_layer_points_one_way():
    """cli -> matrix -> api -> workers: nothing below imports what is above it."""
    g = graph()
    order = ["kmodel.cli", "kmodel.matrix", "kmodel.api", "kmodel.workers"]
    for i, upper in enumerate(order):
        for lower in order[i + 1:]:
            below = {m for m in g if m == lower or m.startswith(lower + ".")}
            for m in below:
                assert not any(t == upper or t.startswith(upper + ".") for t in g[m]), \
                    f"{m} imports {upper}, which is above it"


def test_the_kernel_core_is_a_leaf():
    """kernel/core.py (kfunc, the registry, kernel()) imports nothing of the model: the
    header-like pieces (include/rwonce.py, include/bitops.py, include/kernel.py), the
    per-execution state (kernel/state.py), the splat printer (lib/dump_stack.py) and
    KASAN (mm/kasan.py) live apart from it, and none of the core is in a cycle."""
    g = graph()
    assert not [t for t in g["kmodel.linux.kernel.core"] if t.startswith("kmodel.linux")]
    for comp in cycles(g):
        assert not comp & {"kmodel.linux.kernel.core", "kmodel.linux.kernel.sched",
                           "kmodel.linux.kernel.panic", "kmodel.linux.mm.slab",
                           "kmodel.linux.lib.dump_stack", "kmodel.linux.kernel.state",
                           "kmodel.linux.kernel.locking.lockdep",
                           "kmodel.linux.kernel.locking.spinlock",
                           "kmodel.linux.include.rwonce", "kmodel.linux.mm.kasan"}, comp


def test_a_splat_is_reported_in_one_place():
    """Every detector of the modelled kernel hands its splat to lib/dump_stack.py's
    report_splat, which prints the call trace too: no other module under linux/ makes a
    Report or a "Call Trace:" itself (kernel/fork.py's kmemleak report, an end-of-run
    check with no call trace, is the one exception)."""
    linux = ROOT / PACKAGE / "linux"
    makers = sorted(str(p.relative_to(linux)) for p in linux.rglob("*.py")
                    if "Report(" in p.read_text() or '"Call Trace:"' in p.read_text())
    assert makers == ["kernel/fork.py", "lib/dump_stack.py"]


def test_engine_imports_nothing_outside_engine():
    g = graph()
    bad = [f"{m} -> {t}" for m in sorted(g) if m.startswith("kmodel.engine")
           for t in sorted(g[m]) if not t.startswith("kmodel.engine")]
    assert not bad, "the engine knows nothing of the rest: " + "; ".join(bad)
