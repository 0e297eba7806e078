"""Exact fleet assignment as a mixed-integer programme solved by HiGHS (scipy.optimize.milp).

Priorities are lexicographic: one solve per priority level, highest first, minimising that
level's cost (plus a penalty per model left without room) while every higher level keeps
the optimum it already reached, so a lower priority can never displace a higher one.

Per model m and option o, x[m,o] = 1 chooses the option and u[m] = 1 leaves the model
without room; y[m,o,k] counts the option's replicas on node k of its bounded tier:
  sum_o x[m,o] + u[m] = 1,   sum_k y[m,o,k] = replicas[o] * x[m,o]
  per node: sum y * memory <= free memory, sum y * cores <= free cores
  per gpu node and need level s: replicas needing >= s fit the devices with >= s free
(one replica per device, so this nested count condition is exactly Hall's condition).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from .problem import FleetModel, Option, Problem, Solution


@dataclass
class _Builder:
    """Rows of a sparse constraint matrix with their bounds."""

    rows: list[int] = field(default_factory=list)
    cols: list[int] = field(default_factory=list)
    vals: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)

    def add(self, terms: list[tuple[int, float]], lo: float, hi: float) -> None:
        row = len(self.lower)
        for col, val in terms:
            self.rows.append(row)
            self.cols.append(col)
            self.vals.append(val)
        self.lower.append(lo)
        self.upper.append(hi)

    def constraint(self, n: int) -> LinearConstraint:
        matrix = coo_matrix((self.vals, (self.rows, self.cols)), shape=(len(self.lower), n))
        return LinearConstraint(matrix.tocsr(), np.array(self.lower), np.array(self.upper))


def variable_count(problem: Problem) -> int:
    """Integer variables the programme needs (how the fleet planner decides it is too big)."""
    count = 0
    for model in problem.models:
        count += 1 + len(model.options)
        count += sum(len(problem.rooms(o.tier)) for o in model.options if o.bounded)
    return count


def solve_exact(problem: Problem, time_limit_s: float) -> Solution | None:
    """The lexicographically optimal assignment, or None if HiGHS did not prove one in time."""
    penalty = 1.0 + 10.0 * sum(float(m.options[-1].cost) for m in problem.models)
    reached: list[tuple[list[FleetModel], float]] = []
    solution: Solution | None = None
    for level in problem.levels():
        scope = [m for m in problem.models if m.priority == level]
        result = _solve(problem, scope, reached, penalty, time_limit_s)
        if result is None:
            return None
        solution, value = result
        reached.append((scope, value))
    return solution if solution is not None else {}


def _solve(
    problem: Problem,
    scope: list[FleetModel],
    reached: list[tuple[list[FleetModel], float]],
    penalty: float,
    time_limit_s: float,
) -> tuple[Solution, float] | None:
    models = [m for group, _ in reached for m in group] + scope
    index = _Index(problem, models)
    cons = _Builder()
    _assignment_rows(index, cons)
    _capacity_rows(problem, index, cons)
    for group, value in reached:  # higher levels keep their optimum
        terms = _level_terms(index, group, penalty)
        cons.add(terms, -np.inf, value * (1 + 1e-9) + 1e-6)
    objective = np.zeros(index.size)
    for col, coef in _level_terms(index, scope, penalty):
        objective[col] = coef
    upper = np.array(index.upper, dtype=float)
    result = milp(
        objective,
        constraints=[cons.constraint(index.size)],
        integrality=np.ones(index.size),
        bounds=Bounds(np.zeros(index.size), upper),
        options={"time_limit": time_limit_s, "presolve": True},
    )
    if result.status != 0 or result.x is None:
        return None
    return index.read(result.x), float(result.fun)


class _Index:
    """Column numbers of x[m,o], u[m] and y[m,o,k]."""

    def __init__(self, problem: Problem, models: list[FleetModel]) -> None:
        self.models = models
        self.x: dict[tuple[int, int], int] = {}
        self.u: dict[int, int] = {}
        self.y: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.upper: list[float] = []
        for m, model in enumerate(models):
            self.u[m] = self._new(1)
            for o, option in enumerate(model.options):
                self.x[m, o] = self._new(1)
                if option.bounded:
                    rooms = problem.rooms(option.tier)
                    self.y[m, o] = [(k, self._new(option.replicas)) for k in range(len(rooms))]

    def _new(self, upper: float) -> int:
        self.upper.append(upper)
        return len(self.upper) - 1

    @property
    def size(self) -> int:
        return len(self.upper)

    def read(self, values: np.ndarray) -> Solution:
        out: Solution = {}
        for m, model in enumerate(self.models):
            chosen = [o for o in range(len(model.options)) if values[self.x[m, o]] > 0.5]
            out[model.key] = model.options[chosen[0]] if chosen else None
        return out


def _level_terms(index: _Index, group: list[FleetModel], penalty: float) -> list[tuple[int, float]]:
    keys = {model.key for model in group}
    terms = []
    for m, model in enumerate(index.models):
        if model.key in keys:
            terms.append((index.u[m], penalty))
            terms += [(index.x[m, o], float(opt.cost)) for o, opt in enumerate(model.options)]
    return terms


def _assignment_rows(index: _Index, cons: _Builder) -> None:
    for m, model in enumerate(index.models):
        one = [(index.u[m], 1.0)] + [(index.x[m, o], 1.0) for o in range(len(model.options))]
        cons.add(one, 1.0, 1.0)
        for o, option in enumerate(model.options):
            if option.bounded:
                spread = [(col, 1.0) for _, col in index.y[m, o]]
                cons.add([*spread, (index.x[m, o], -float(option.replicas))], 0.0, 0.0)


def _capacity_rows(problem: Problem, index: _Index, cons: _Builder) -> None:
    by_node: dict[tuple[str, int], list[tuple[int, Option]]] = {}
    for (m, o), cols in index.y.items():
        option = index.models[m].options[o]
        for k, col in cols:
            by_node.setdefault((option.tier, k), []).append((col, option))
    for (tier, k), entries in by_node.items():
        room = problem.rooms(tier)[k]
        memory = [(c, float(_memory(o))) for c, o in entries]
        cons.add(memory, -np.inf, float(room.memory))
        if room.cpu is not None:
            cons.add([(c, o.need.cpu) for c, o in entries], -np.inf, room.cpu)
        gpu = [(c, o) for c, o in entries if o.need.gpu]
        for level in sorted({o.need.tier_bytes for _, o in gpu}):
            devices = sum(1 for free in room.devices if free >= level)
            cons.add([(c, 1.0) for c, o in gpu if o.need.tier_bytes >= level], -np.inf, devices)


def _memory(option: Option) -> int:
    """Host memory one replica takes from its node (device memory is counted per device)."""
    return option.need.host_bytes if option.need.gpu else option.need.tier_bytes
