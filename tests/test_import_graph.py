"""The package's import graph runs one way: no module imports, even lazily inside a function, a module that
imports it back (directly or through others), and no stage of the pipeline imports a later one (models never
import training, training never imports predict, nothing imports cli). A package may import its own submodules
(re-exports). The order is docs/architecture.md's.

    .venv/bin/python tests/test_import_graph.py     # the graph's shape: modules, arrows, longest chain, rooms, floors
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "robosat_effnet"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph() -> dict[str, set[str]]:
    modules = module_names()

    def owner(target: str) -> str | None:  # "a.b.name" -> the module "a.b" that defines it
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(PACKAGE.name):
                targets = [owner(f"{node.module}.{alias.name}") for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [owner(alias.name) for alias in node.names if alias.name.startswith(PACKAGE.name)]
            graph[name] |= {t for t in targets if t and t != name and not t.startswith(name + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# The stages in the order data flows through them (docs/architecture.md): a module may import its own stage and
# the stages before it, never a later one. A name stands for that module and everything under it; the longest
# one applies.
STAGES = [
    # the base every stage stands on: exceptions, maxima, atomic I/O, slippy-map files, palettes, output checks
    ["robosat_effnet", "robosat_effnet._version", "robosat_effnet.errors", "robosat_effnet.io",
     "robosat_effnet.tiles", "robosat_effnet.limits", "robosat_effnet.colors", "robosat_effnet.outputs",
     "robosat_effnet.threshold", "robosat_effnet.text", "robosat_effnet.extras", "robosat_effnet.precision",
     "robosat_effnet.lazy"],
    ["robosat_effnet.data"],  # scenes, the one scene-to-tile warp, transforms, GeoJSON, probabilities, synthetic
    ["robosat_effnet.scoring"],  # pixels (one confusion matrix) and objects (SpaceNet matching)
    ["robosat_effnet.models"],  # networks, weights, the checkpoint spec, the ONNX runtime
    ["robosat_effnet.config"],  # typed TOML; a model.toml describes a checkpoint's ModelSpec
    # the stages, side by side: none of them imports another
    ["robosat_effnet.prepare"],
    ["robosat_effnet.vectorize"],
    ["robosat_effnet.training", "robosat_effnet.train"],  # robosat_effnet.train: the documented old path
    ["robosat_effnet.predict"],
    ["robosat_effnet.deploy", "robosat_effnet.export"],  # robosat_effnet.export: the documented old path
    ["robosat_effnet.evaluation"],  # predicts (predict), polygonises (vectorize)
    # adapt: self-training runs predict (the pseudo-labels) and then training, so it stands above both
    ["robosat_effnet.study", "robosat_effnet.bench", "robosat_effnet.view", "robosat_effnet.demo",
     "robosat_effnet.adapt"],
    ["robosat_effnet.cli"],
]

# Upward imports that are known and accepted, each with its reason; any other one fails the test.
ACCEPTED: dict[tuple[str, str], str] = {}


def stage(module: str) -> int:
    matches = [(len(name), rank) for rank, names in enumerate(STAGES) for name in names
               if module == name or module.startswith(name + ".")
               if name != "robosat_effnet" or module == name]  # the package's own name stands for itself alone
    assert matches, f"{module} belongs to no stage: add it to STAGES"
    return max(matches)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports a module of a later stage."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if stage(b) > stage(a))


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and graph["robosat_effnet.training.loop"]  # the walk found the package and its imports
    assert cycles(graph) == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_stage_imports_a_later_one():
    graph = import_graph()
    assert {stage(m) for m in graph} == set(range(len(STAGES)))  # every module has a stage, every stage a module
    assert [pair for pair in upward_imports(graph) if pair not in ACCEPTED] == []
    assert sorted(ACCEPTED) == upward_imports(graph)  # an accepted import that is gone leaves the list


def test_an_upward_import_is_found():
    graph = import_graph()
    graph["robosat_effnet.models.weights"] |= {"robosat_effnet.training.loop"}  # models importing training
    graph["robosat_effnet.training.loop"] |= {"robosat_effnet.predict.engine"}  # training importing predict
    graph["robosat_effnet.prepare.tile"] |= {"robosat_effnet.cli.options"}  # anything importing cli
    graph["robosat_effnet.predict.tiles"] |= {"robosat_effnet.data.transforms"}  # downward: allowed
    found = set(upward_imports(graph)) - set(ACCEPTED)
    assert found == {("robosat_effnet.models.weights", "robosat_effnet.training.loop"),
                     ("robosat_effnet.training.loop", "robosat_effnet.predict.engine"),
                     ("robosat_effnet.prepare.tile", "robosat_effnet.cli.options")}


# The graph's shape when the layout of docs/architecture.md landed (issue 30); it may shrink, not grow, unnoticed.
# Before it: 126 modules, 454 arrows, a longest chain of 13 modules, 17 rooms with 66 arrows between them, two
# back-up arrows (io -> outputs -> __version__ in the package root -> models; config.model -> training.losses) and
# so a circle between rooms (config <-> training): no floors could be counted.
LONGEST_CHAIN = 14  # modules, cli.bench -> bench.run -> ... -> errors
FLOORS = 9  # rooms on the longest chain: cli, study, bench, deploy, predict, config, models, data, base


def room(module: str) -> str:
    """A module's room: its top-level package or module under robosat_effnet; the base modules are one room."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "base"
    return "base" if stage(".".join(parts[:2])) == 0 else name


def room_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = {room(m): set() for m in graph}
    for a, targets in graph.items():
        rooms[room(a)] |= {room(b) for b in targets if room(b) != room(a)}
    return rooms


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest path of arrows through an acyclic graph (the height of the house)."""

    @cache
    def height(node: str) -> int:
        return 1 + max((height(n) for n in graph[node]), default=0)

    chain = [max(sorted(graph), key=height)]
    while graph[chain[-1]]:
        chain.append(max(sorted(graph[chain[-1]]), key=height))
    return chain


def report(graph: dict[str, set[str]]) -> dict:
    rooms = room_graph(graph)
    return {"modules": len(graph), "arrows": sum(map(len, graph.values())), "longest chain": longest_chain(graph),
            "rooms": len(rooms), "room arrows": sum(map(len, rooms.values())), "floors": longest_chain(rooms),
            "back-up arrows": len(upward_imports(graph)), "circles": len(cycles(graph)) + len(cycles(rooms))}


def test_the_house_stays_low():
    shape = report(import_graph())
    assert (shape["back-up arrows"], shape["circles"]) == (0, 0)
    assert len(shape["longest chain"]) <= LONGEST_CHAIN, " -> ".join(shape["longest chain"])
    assert len(shape["floors"]) <= FLOORS, " -> ".join(shape["floors"])


# The stages that stand side by side on the foundations: none imports another (what two of them share lives below).
SIDE_BY_SIDE = ("prepare", "vectorize", "training", "predict")


def stage_to_stage(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    rooms = room_graph(graph)
    return {(a, b) for a in SIDE_BY_SIDE for b in rooms[a] if b in SIDE_BY_SIDE}


def test_the_stages_stand_side_by_side():
    assert stage_to_stage(import_graph()) == set()


def test_a_stage_importing_another_is_found():
    graph = import_graph()
    graph["robosat_effnet.predict.tiles"] |= {"robosat_effnet.training.datasets"}  # downward, yet across stages
    graph["robosat_effnet.vectorize.features"] |= {"robosat_effnet.prepare.tile"}
    assert stage_to_stage(graph) == {("predict", "training"), ("vectorize", "prepare")}


def test_a_longer_chain_is_measured():
    chain = longest_chain({"a": {"b", "c"}, "b": {"c"}, "c": {"d"}, "d": set()})
    assert chain == ["a", "b", "c", "d"]


if __name__ == "__main__":
    shape = report(import_graph())
    for key, value in shape.items():
        print(f"{key}: {len(value)} ({' -> '.join(value)})" if isinstance(value, list) else f"{key}: {value}")
    sys.exit(0)
