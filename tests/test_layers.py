"""The project's dependencies run one way, and no module imports itself back, counting the imports made
inside functions (pipeline/devtools/imports.py reads them from the code; importlib by name and
`if TYPE_CHECKING:` blocks excepted). The layers, top to bottom, as docs/architecture.md draws them:

    stages, devtools -> cli, commands -> report -> train -> (extract, interop)
      -> (pose, rgb, probe, sample) -> keypoints -> runner -> hashmemo -> video
      -> (store, models, manifest, compat) -> (config, fingerprint, safe_unpickle, progress, scratch) -> errors

A package may import only from layers below its own (never a sibling package of its layer); the
runner receives the stages it runs by reference and imports none of them."""

from __future__ import annotations

from pipeline.devtools.imports import project_graph

LAYERS = [
    ("stages", "pipeline.devtools"),
    ("pipeline.cli", "pipeline.commands"),
    ("pipeline.report",),
    ("pipeline.train",),
    ("pipeline.extract", "pipeline.interop"),
    ("pipeline.pose", "pipeline.rgb", "pipeline.probe", "pipeline.sample"),
    ("pipeline.keypoints",),
    ("pipeline.runner",),
    ("pipeline.hashmemo",),
    ("pipeline.video",),
    ("pipeline.store", "pipeline.models", "pipeline.manifest", "pipeline.compat"),
    ("pipeline.config", "pipeline.fingerprint", "pipeline.safe_unpickle", "pipeline.progress", "pipeline.scratch"),
    ("pipeline.errors",),
]
RANK = {package: len(LAYERS) - i for i, layer in enumerate(LAYERS) for package in layer}
GRAPH = project_graph()


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] == "stages" else ".".join(parts[:2])


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in GRAPH} - {"pipeline"}  # pipeline/__init__.py: the package itself
    assert packages <= set(RANK), f"packages with no layer in tests/test_layers.py: {sorted(packages - set(RANK))}"


def test_imports_only_go_down():
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if package_of(a) not in (package_of(b), "pipeline") and RANK[package_of(a)] <= RANK[package_of(b)]
    )
    assert not upward, "imports against the layers:\n  " + "\n  ".join(upward)


def test_no_module_imports_itself_back():
    cycles = _cycles(GRAPH)
    assert not cycles, "import circles:\n  " + "\n  ".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checks_catch_a_circle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert RANK["pipeline.runner"] < RANK["pipeline.pose"]  # pose -> runner is down; runner -> pose would be up
