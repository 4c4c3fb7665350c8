"""The pipeline's shape as data: stages (:class:`StageSpec`) and what each reads (:class:`StageGraph`).

A stage reads the manifests of the stages it names in ``reads`` (none: the run's input images) and writes one
manifest (one JSON line per image) plus, optionally, folders of files (those its records point to, or files drawn
from its records, such as ``segment``'s previews). The first stage it
reads is its *primary* input: one output record per primary record, with the same id; the others are joined by
that id. Run order, ``--stages`` selections, ``--force`` (a stage and everything that reads it, directly or not),
the "run X first" hints, merges and reports are all derived from the graph, never from positions in a list.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Iterator

from genemi.errors import ConfigError

#: what a stage with no ``reads`` works on: the run's input images (an image folder or an annotation file)
IMAGES = "images"


@dataclass(frozen=True)
class StageSpec:
    """One stage of the graph."""

    name: str  # also the config section's name in presets, and the key of --batch-size stage=N
    summary: str
    reads: tuple[str, ...]  # stages whose manifests it reads, primary first; () = the input images
    writes: str  # its manifest, e.g. "masks.jsonl"
    record: type  # the record type of ``writes``
    config: type  # its config section (a dataclass with ``backend``, ``batch_size`` and ``backends``)
    stage: str  # "module:Class" of its :class:`~genemi.generation_pipeline.stage.Stage`
    folders: tuple[str, ...] = field(default=())  # folders of the files it writes (relative paths)
    #: the config section it is configured by when another stage's (default: its own, named as the stage)
    section: str | None = None

    @property
    def section_name(self) -> str:
        return self.section or self.name

    @property
    def backends(self):
        """The backend registry of the stage (declared on its config section)."""
        return self.config.backends

    @property
    def primary(self) -> str | None:
        return self.reads[0] if self.reads else None

    def stage_class(self) -> type:
        module, _, cls = self.stage.partition(":")
        return getattr(importlib.import_module(module), cls)

    def build(self, section, context):
        """The stage object for a config section and a run context."""
        return self.stage_class()(section, context)


class StageGraph:
    """Stages in an order where every stage comes after those it reads (the declared order wherever the
    reads allow it). Immutable: :meth:`with_stage` returns a new graph."""

    def __init__(self, specs, selections: dict[str, str] | None = None) -> None:
        specs = list(specs)
        by_name: dict[str, StageSpec] = {}
        for spec in specs:
            if spec.name in by_name or spec.name == IMAGES:
                raise ConfigError(f"stage name {spec.name!r} is used twice (or is reserved)")
            by_name[spec.name] = spec
        writers: dict[str, str] = {}
        for spec in specs:
            for path in (spec.writes, *spec.folders):
                if path in writers:
                    raise ConfigError(f"stages {writers[path]} and {spec.name} both write {path}")
                writers[path] = spec.name
            for read in spec.reads:
                if read not in by_name:
                    raise ConfigError(f"stage {spec.name} reads {read!r}, which is not a stage")
            if len(set(spec.reads)) != len(spec.reads):
                raise ConfigError(f"stage {spec.name} names a stage it reads twice: {', '.join(spec.reads)}")
        for spec in specs:
            owner = by_name.get(spec.section_name)
            if owner is None or owner.config is not spec.config:
                raise ConfigError(f"stage {spec.name} is configured by section {spec.section_name!r}, which is not a "
                                  f"stage's own section of the same type")
        self._specs = tuple(_ordered(specs))
        self._by_name = {s.name: s for s in self._specs}
        #: named selections for --stages (name -> a selection such as ":score"), e.g. a product's whole chain
        self.selections = dict(selections or {})
        for name, expression in self.selections.items():
            if name in by_name or name == "all":
                raise ConfigError(f"selection name {name!r} is also a stage's name")
            self.select(expression)  # refers to stages that exist

    # --- the stages -------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[StageSpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> StageSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(self.names)}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StageGraph) and (self._specs, self.selections) == (other._specs, other.selections)

    def __hash__(self) -> int:
        return hash((self._specs, tuple(self.selections.items())))

    def __repr__(self) -> str:
        return f"StageGraph({', '.join(self.names)})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._specs)

    def with_stage(self, spec: StageSpec) -> "StageGraph":
        """A graph with ``spec`` added (or, when a stage of that name exists, replaced by it)."""
        specs = [spec if s.name == spec.name else s for s in self._specs]
        if spec.name not in self._by_name:
            specs.append(spec)
        return StageGraph(specs, self.selections)

    # --- relations --------------------------------------------------------------------------------------

    def sections(self) -> dict[str, list[StageSpec]]:
        """Config section name -> the stages it configures (a section is named as the stage that owns it)."""
        out: dict[str, list[StageSpec]] = {}
        for spec in self._specs:
            out.setdefault(spec.section_name, []).append(spec)
        return out

    def readers(self, name: str) -> list[StageSpec]:
        """The stages that read ``name`` directly."""
        return [s for s in self._specs if name in s.reads]

    def downstream(self, names) -> list[StageSpec]:
        """``names`` and every stage that reads one of them, directly or through others, in run order."""
        found = {self[n].name for n in names}
        for spec in self._specs:
            if any(r in found for r in spec.reads):
                found.add(spec.name)
        return [s for s in self._specs if s.name in found]

    def upstream(self, names) -> list[StageSpec]:
        """``names`` and every stage they read, directly or through others, in run order."""
        found = {self[n].name for n in names}
        for spec in reversed(self._specs):
            if spec.name in found:
                found.update(spec.reads)
        return [s for s in self._specs if s.name in found]

    def select(self, selection: str) -> list[StageSpec]:
        """``all``; a named selection (:attr:`selections`); one stage; ``a:b`` (``a``, ``b`` and every stage on a
        path between them; ``a:`` is ``a`` and all it feeds, ``:b`` is ``b`` and all it reads); or a comma list of
        these. In run order."""
        selection = selection.strip()
        if selection == "all":
            return list(self._specs)
        if selection in self.selections:
            return self.select(self.selections[selection])
        if "," in selection:
            names = {s.name for part in selection.split(",") if part.strip() for s in self.select(part)}
            return [s for s in self._specs if s.name in names]
        if ":" in selection:
            first, last = (s.strip() for s in selection.split(":", 1))
            after = {s.name for s in self.downstream([first])} if first else set(self.names)
            before = {s.name for s in self.upstream([last])} if last else set(self.names)
            chosen = after & before
            if not chosen:
                raise ConfigError(f"--stages {selection}: {last} does not read {first}, directly or not")
            return [s for s in self._specs if s.name in chosen]
        if not selection:
            raise ConfigError("--stages is empty")
        return [self[selection]]

    def table(self) -> list[tuple[str, str, str, str]]:
        """``(stage, reads, writes, summary)`` rows, in run order (``--help`` and the docs print them)."""
        rows = []
        for s in self._specs:
            writes = ", ".join((s.writes, *(f"{f}/" for f in s.folders)))
            rows.append((s.name, ", ".join(s.reads) or IMAGES, writes, s.summary))
        return rows


    def markdown(self) -> str:
        """The graph for the docs: a Mermaid diagram (stage -> the stages that read it) and a table."""
        lines = ["```mermaid", "flowchart LR", f"  {IMAGES}([input images])"]
        for s in self._specs:
            lines.append(f"  {s.name}[{s.name}]")
            lines += [f"  {read} --> {s.name}" for read in (s.reads or (IMAGES,))]
        lines += ["```", "", "| stage | reads | writes | backends | what it does |", "|---|---|---|---|---|"]
        for s in self._specs:
            writes = ", ".join(f"`{w}`" for w in (s.writes, *(f"{f}/" for f in s.folders)))
            reads = ", ".join(f"`{r}`" for r in s.reads) or "input images"
            backends = ", ".join(f"`{b}`" for b in s.backends.names)
            lines.append(f"| `{s.name}` | {reads} | {writes} | {s.backends.flag} {backends} | {s.summary} |")
        if self.selections:
            named = ", ".join(f"`{name}` = `{expr}` ({', '.join(t.name for t in self.select(name))})"
                              for name, expr in self.selections.items())
            lines += ["", f"Named selections for `--stages`: {named}; `all` runs every stage."]
        return "\n".join(lines) + "\n"


def _ordered(specs: list[StageSpec]) -> list[StageSpec]:
    """A topological order that keeps the declared order wherever the reads allow (raises on a cycle)."""
    done: list[StageSpec] = []
    placed: set[str] = set()
    pending = list(specs)
    while pending:
        ready = next((s for s in pending if all(r in placed for r in s.reads)), None)
        if ready is None:
            raise ConfigError(f"the stages {', '.join(s.name for s in pending)} read each other in a cycle")
        done.append(ready)
        placed.add(ready.name)
        pending.remove(ready)
    return done

