"""The package's shape: no import cycles or upward imports, argparse only under cli/, no private names imported across
modules, short functions and modules, no probing of jobs and writers with getattr/hasattr."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dreamreel"


def _module(path: Path, pkg: Path = PKG) -> str:
    parts = list(path.relative_to(pkg.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(pkg: Path = PKG):
    """module -> [(imported module, names, is_package_init)] for every import in dreamreel/ (top level or not)."""
    out = {}
    for path in pkg.rglob("*.py"):
        mod = _module(path, pkg)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        edges = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges += [(a.name, [], False) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                edges.append((target, [a.name for a in node.names], True))
        out[mod] = edges
    return out


def _cycles(imports, root: str = "dreamreel") -> list[list[str]]:
    graph = {}
    for mod, edges in imports.items():
        deps = set()
        for target, names, _ in edges:
            if not target.startswith(root):
                continue
            for name in names or [None]:
                sub = f"{target}.{name}" if name else target
                deps.add(sub if sub in imports else target)
        deps.discard(mod)
        # a name taken from a package's __init__ (``from . import ModelSpec``) is an edge to that __init__: when the
        # __init__ imports the module back, that is a cycle Python resolves only by the order of the lines
        graph[mod] = {d for d in deps if d in imports}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycles_in_the_package():
    assert _cycles(_imports()) == []


def test_the_cycle_check_sees_a_package_init_importing_a_module_that_imports_it(tmp_path):
    """The shape the model registry once had: models/__init__ defines register() and imports zoo at its bottom,
    zoo does ``from . import register``."""
    pkg = tmp_path / "pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("def register(x):\n    return x\n\n\nfrom . import zoo\n")
    (pkg / "models" / "zoo.py").write_text("from . import register\n")
    assert _cycles(_imports(pkg), "pkg") == [["pkg.models", "pkg.models.zoo", "pkg.models"]]
    (pkg / "models" / "registry.py").write_text("def register(x):\n    return x\n")
    (pkg / "models" / "__init__.py").write_text("from .registry import register\nfrom . import zoo\n")
    (pkg / "models" / "zoo.py").write_text("from .registry import register\n")
    assert _cycles(_imports(pkg), "pkg") == []


def test_argparse_only_under_cli():
    users = {m for m, edges in _imports().items() if any(t == "argparse" for t, _, _ in edges)}
    assert users and all(m.startswith("dreamreel.cli") for m in users), users


def test_no_private_name_imported_across_modules():
    bad = [(m, t, n) for m, edges in _imports().items() for t, names, _ in edges if t.startswith("dreamreel")
           for n in names if n.startswith("_") and n != "__version__"]
    assert bad == []


def test_nothing_outside_cli_imports_the_cli():
    bad = [m for m, edges in _imports().items() if not m.startswith(("dreamreel.cli", "dreamreel.__main__"))
           and any(t.startswith("dreamreel.cli") for t, _, _ in edges)]
    assert bad == []


def test_pyproject_lists_every_subpackage():
    import re

    text = (PKG.parent / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(dreamreel(?:\.[a-z_]+)*)"', text.split("packages = [", 1)[1].split("]", 1)[0]))
    found = {_module(p) for p in PKG.rglob("__init__.py")}
    assert found <= listed and "dreamreel.preset_files" in listed, found - listed


def test_only_io_ffmpeg_starts_ffmpeg_or_reads_its_header():
    """One place runs and probes ffmpeg: the binary, subprocesses and the "Duration:" header field live in io/ffmpeg.py
    (io/outputs.read_frames decodes this package's own outputs through imageio-ffmpeg's reader)."""
    users = {}
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        hits = [w for w in ("get_ffmpeg_exe", "subprocess.run", "subprocess.Popen", "Duration:") if w in text]
        if hits:
            users[_module(path)] = hits
    assert set(users) == {"dreamreel.io.ffmpeg"}, users


def test_each_subpackage_offers_a_small_public_surface():
    import importlib

    for name in ("dreamreel", "dreamreel.engine", "dreamreel.models", "dreamreel.io", "dreamreel.render"):
        pkg = importlib.import_module(name)
        assert 3 <= len(pkg.__all__) <= 25, (name, pkg.__all__)
        for attr in pkg.__all__:
            assert getattr(pkg, attr) is not None, (name, attr)


#: Lower layers first; a module may import its own layer or a lower one, never a higher one.
LAYERS = [
    {"dreamreel.errors", "dreamreel.interrupts", "dreamreel.outcome", "dreamreel.distributed", "dreamreel.executors",
     "dreamreel.schedule"},
    {"dreamreel.options", "dreamreel.parsers", "dreamreel.series", "dreamreel.presets", "dreamreel.io", "dreamreel.models"},
    {"dreamreel.engine"},
    {"dreamreel.plan"},
    {"dreamreel.render"},
    {"dreamreel.api", "dreamreel.batch", "dreamreel.batch_ray", "dreamreel.batch_worker", "dreamreel.manifest",
     "dreamreel.reproduce", "dreamreel.measures", "dreamreel.reproduce_report"},
    {"dreamreel", "dreamreel.cli", "dreamreel.__main__"},
]


def _layer(mod: str) -> int:
    parts = mod.split(".")
    for n in (2, 1):
        group = ".".join(parts[:n])
        for i, layer in enumerate(LAYERS):
            if group in layer:
                return i
    raise AssertionError(f"{mod} is in no layer of LAYERS")


def test_every_module_has_a_layer_and_no_import_runs_upward():
    imports = _imports()
    upward = []
    for mod, edges in imports.items():
        for target, _, _ in edges:
            if target.startswith("dreamreel") and target != "dreamreel" and _layer(target) > _layer(mod):
                upward.append((mod, target))
    assert upward == []


def _trees():
    for path in sorted(PKG.rglob("*.py")):
        yield _module(path), path, ast.parse(path.read_text())


def test_no_function_over_80_lines():
    long = [(m, node.name, node.end_lineno - node.lineno + 1) for m, _, tree in _trees() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80]
    assert long == []


def _table_lines(tree) -> int:
    """Lines of module-level data tables: an assignment of a list, tuple, dict or set display of 5 or more items."""
    n = 0
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.List, ast.Tuple, ast.Dict, ast.Set)):
            items = node.value.keys if isinstance(node.value, ast.Dict) else node.value.elts
            if len(items) >= 5:
                n += node.end_lineno - node.lineno + 1
    return n


def test_no_module_over_400_lines_data_tables_aside():
    big = [(m, n) for m, path, tree in _trees() if (n := len(path.read_text().splitlines()) - _table_lines(tree)) > 400]
    assert big == []


def _probes(tree):
    """getattr/hasattr calls whose object is named like a job or a writer (``job``, ``self.writer``, ``zoom_job``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            obj = node.args[0] if node.args else None
            name = obj.id if isinstance(obj, ast.Name) else obj.attr if isinstance(obj, ast.Attribute) else ""
            if "job" in name.lower() or "writer" in name.lower():
                yield node.lineno, ast.unparse(node)


def test_no_getattr_or_hasattr_on_a_job_or_a_writer():
    probes = [(m, *p) for m, _, tree in _trees() for p in _probes(tree)]
    assert probes == []
