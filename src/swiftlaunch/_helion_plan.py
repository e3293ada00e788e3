"""The second stage of the Helion dispatch: running a host wrapper's whole call natively.

A Helion host wrapper replays the user's host code, then launches once:

    def add(x, y, *, _launcher=_default_launcher):
        out = torch.empty_like(x)
        _launcher(_helion_add, (4,), x, y, out, num_warps=4, num_stages=1)
        return out

When the wrapper's code is only allocations of the `empty` family, expressions of tensor metadata,
asserts on them, one `_launcher(...)` call and a return of names, the native dispatch can run the
call itself: guard → allocate → launch → return, with no Python frame. This module decides that
from the wrapper's source (`analyse`, once per wrapper, never guessed from behaviour) and records a
*plan* from one real call (`record`), which the native entry keeps.

Why a plan recorded once per native entry is exact: an entry is keyed by what Helion's
prepared-call guard compares (argument count, exact types, each tensor's dtype, shape, strides and
device, aliasing, constexpr values; see `HelionGuard.swift`). That is exact even for
`static_shapes=False` kernels, whose one bound kernel serves many shapes: each shape is its own
entry, with its own plan. So every expression that reads only tensor metadata (`x.size(0)`,
`x.shape`, `x.stride()`, `x.dtype`, `x.device`, `x.ndim`, `x.dim()`, `x.numel()`), literals and a
few pure functions (`triton.cdiv`, `helion.runtime.get_num_sm`, `torch.promote_types`, `min`, ...)
has one value per entry; asserts on them passed in the recorded call and pass in every later one.
What is *not* fixed per entry, and so is passed through from the current call:
- the arguments themselves (tensors by identity; non-constexpr scalars, which Helion's guard checks
  by type only) — allowed only as bare names, never inside an expression;
- the allocations: each is made again on every call by the very same torch function with the same
  argument list (the current tensors in the same positions, the recorded metadata values elsewhere),
  so it gives exactly what the wrapper would, global defaults (default dtype/device) included (a
  recorded `torch.Size` goes as the tuple of its ints: the same sizes, parsed faster by torch).

A broadcast of parameters rebound to themselves, `x, y = torch.broadcast_tensors(x, y)` (Helion's
examples start so), is dropped from the native run when it changes nothing. On inputs whose shapes
already match, `torch.broadcast_tensors` returns the very objects it was given (ATen's
`expand_outplace` keeps a tensor of the target size as it is; no view, no autograd node, no op
dispatched), and whether the shapes match is fixed per entry by the guard. The recorded call runs the
real broadcast; if it gave other objects, every later use of a rebound name as an argument fails the
plan's identity check (`_spec`), and that entry stays in the first stage ("torch.broadcast_tensors
changes a shape"). A use in metadata only needs no check: the broadcast shape is itself a function of
the guarded shapes.

Recording runs a *twin* of the wrapper, compiled from its own syntax tree in its own globals, in
which each allocation call `F(a, b, k=c)` becomes `__sl_alloc__(j, F, a, b, k=c)` (it records the
values and calls `F`) and `_launcher` is a recording wrapper around swiftlaunch's launcher. The twin
*is* the recorded call: its outputs are the call's result and it launches exactly once.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import textwrap
import types
import weakref

# Spec kinds, as the native side decodes them.
INPUT, OUTPUT, CONSTANT = 0, 1, 2

# Tensor attributes and methods fixed by Helion's guard (dtype, shape, strides, device).
TENSOR_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim"})
TENSOR_METHODS = frozenset({"size", "stride", "dim", "numel"})
# Allocations whose dtype and device come from a tensor (poolable as they are).
LIKE_ALLOCATIONS = ("empty_like",)
METHOD_ALLOCATIONS = frozenset({"new_empty", "new_empty_strided"})
# Keywords a poolable allocation may carry: anything else (requires_grad=, pin_memory=, ...) would
# make a pooled tensor differ from a fresh one in ways the pool does not compare.
POOLABLE_KEYWORDS = frozenset({"dtype", "device"})

LAUNCHER = "_launcher"
ALLOC = "__sl_alloc__"
NOT_GLOBAL = object()


def _pure_functions() -> dict:
    """Functions a metadata expression may call: pure functions of their arguments (and, for
    `get_num_sm`, of the device, which the guard fixes). Compared by identity."""
    import torch
    import triton

    functions = {id(f): f for f in (min, max, int, float, bool, len, abs, tuple, list, math.ceil, math.floor,
                                     triton.cdiv, triton.next_power_of_2, torch.promote_types)}
    try:
        import helion.runtime

        functions[id(helion.runtime.get_num_sm)] = helion.runtime.get_num_sm
    except (ImportError, AttributeError):
        pass
    return functions


def _allocation_functions() -> dict:
    import torch

    return {id(torch.empty): "empty", id(torch.empty_like): "empty_like", id(torch.empty_strided): "empty_strided"}


def _immutable_constant(value) -> bool:
    import torch

    return type(value) in (int, float, bool, str, type(None), torch.dtype, torch.device)


class Ineligible(Exception):
    """The wrapper's code is not of the forms a native run reproduces; the message says which."""


class Analysis:
    """What `analyse` found in an eligible wrapper: its parameters, its allocations (in order), its one
    launch and its return, as syntax nodes, plus the twin that records a call."""

    def __init__(self, params, allocations, launch, returned, twin, bases, broadcast):
        self.params = params              # parameter names, in order (without `_launcher`)
        self.bases = bases                # names whose metadata an expression reads
        self.broadcast = broadcast        # parameters rebound by `torch.broadcast_tensors`
        self.allocations = allocations    # [(name, ast.Call, kind, poolable)]
        self.launch = launch              # the `_launcher(...)` ast.Call
        self.returned = returned          # None, an ast.Name, or a list of ast.Name (a tuple)
        self.twin = twin                  # the recording twin (a function)


class _Checker:
    """Checks the wrapper's statements one by one, tracking which names are parameters, metadata
    values and outputs."""

    def __init__(self, function: types.FunctionType, tree: ast.FunctionDef):
        self.globals = function.__globals__
        self.pure = _pure_functions()
        self.allocating = _allocation_functions()
        arguments = tree.args
        if arguments.vararg or arguments.kwarg or arguments.posonlyargs:
            raise Ineligible("variadic or positional-only parameters")
        if [a.arg for a in arguments.kwonlyargs] != [LAUNCHER]:
            raise Ineligible("keyword-only parameters other than _launcher")
        self.params = [a.arg for a in arguments.args]
        self.metadata: set[str] = set()
        self.outputs: dict[str, int] = {}
        # Parameters and outputs whose metadata an expression reads.
        self.bases: set[str] = set()
        # Parameters rebound to themselves by `x, y = torch.broadcast_tensors(x, y)`.
        self.broadcast: set[str] = set()

    # --- names and globals ---------------------------------------------------------------------

    def _global(self, name: str):
        if name in self.globals:
            return self.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise Ineligible(f"unknown name {name}")

    def _resolve(self, node):
        """The object a global name or a module attribute chain names (resolved now, once), else
        `NOT_GLOBAL` (a local name, or an attribute of something that is not a module)."""
        if isinstance(node, ast.Name):
            if node.id in self.params or node.id in self.metadata or node.id in self.outputs or node.id == LAUNCHER:
                return NOT_GLOBAL
            return self._global(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            if isinstance(base, types.ModuleType):
                try:
                    return getattr(base, node.attr)
                except AttributeError:
                    raise Ineligible(f"unknown attribute {node.attr}") from None
        return NOT_GLOBAL

    def _is_tensor_name(self, node) -> bool:
        return isinstance(node, ast.Name) and (node.id in self.params or node.id in self.outputs)

    # --- expressions ---------------------------------------------------------------------------

    def metadata_expression(self, node) -> None:
        """Raises unless `node` reads only tensor metadata, literals, metadata names and pure functions."""
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, ast.Name):
            if node.id in self.metadata:
                return
            if node.id in self.params or node.id in self.outputs:
                raise Ineligible(f"{node.id} used inside an expression (only its metadata is fixed per entry)")
            if _immutable_constant(self._resolve(node)):
                return
            raise Ineligible(f"global {node.id} is not an immutable constant")
        if isinstance(node, ast.Attribute):
            if self._is_tensor_name(node.value):
                if node.attr in TENSOR_ATTRIBUTES:
                    self.bases.add(node.value.id)
                    return
                raise Ineligible(f".{node.attr} is not guarded tensor metadata")
            value = self._resolve(node)
            if value is NOT_GLOBAL:
                # An attribute of a metadata value (`x.dtype.itemsize`, `x.device.index`): those values
                # are dtypes, devices, sizes and numbers, immutable and fixed per entry, as long as the
                # value itself is metadata (`x.grad.shape` is not: `.grad` is refused here).
                self.metadata_expression(node.value)
                return
            if _immutable_constant(value):
                return
            raise Ineligible(f"attribute {node.attr} is not an immutable constant")
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Attribute) and self._is_tensor_name(function.value):
                if function.attr not in TENSOR_METHODS:
                    raise Ineligible(f".{function.attr}() is not guarded tensor metadata")
                self.bases.add(function.value.id)
            else:
                callee = self._resolve(function)
                if callee is NOT_GLOBAL or self.pure.get(id(callee)) is not callee:
                    raise Ineligible(f"call of {ast.unparse(function)}")
            for keyword in node.keywords:
                if keyword.arg is None:
                    raise Ineligible("** in a call")
                self.metadata_expression(keyword.value)
            for argument in node.args:
                if isinstance(argument, ast.Starred):
                    raise Ineligible("* in a call")
                self.metadata_expression(argument)
            return
        if isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    raise Ineligible("* in a display")
                self.metadata_expression(element)
            return
        if isinstance(node, ast.BinOp):
            self.metadata_expression(node.left)
            self.metadata_expression(node.right)
            return
        if isinstance(node, ast.UnaryOp):
            self.metadata_expression(node.operand)
            return
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.metadata_expression(value)
            return
        if isinstance(node, ast.Compare):
            self.metadata_expression(node.left)
            for value in node.comparators:
                self.metadata_expression(value)
            return
        if isinstance(node, ast.IfExp):
            for part in (node.test, node.body, node.orelse):
                self.metadata_expression(part)
            return
        if isinstance(node, ast.Subscript):
            self.metadata_expression(node.value)
            self.metadata_expression(node.slice)
            return
        if isinstance(node, ast.JoinedStr):  # an f-string (assert messages)
            for value in node.values:
                self.metadata_expression(value)
            return
        if isinstance(node, ast.FormattedValue):
            self.metadata_expression(node.value)
            if node.format_spec is not None:
                self.metadata_expression(node.format_spec)
            return
        if isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self.metadata_expression(part)
            return
        raise Ineligible(f"{type(node).__name__} expression")

    def argument(self, node) -> None:
        """A call argument: a bare parameter or output name (passed through), else metadata."""
        if isinstance(node, ast.Name) and (node.id in self.params or node.id in self.outputs):
            return
        self.metadata_expression(node)

    def allocation(self, node) -> tuple[str, bool] | None:
        """`(kind, poolable)` when `node` is a call of the `empty` family, else None."""
        if not isinstance(node, ast.Call):
            return None
        function = node.func
        if isinstance(function, ast.Attribute) and self._is_tensor_name(function.value):
            if function.attr not in METHOD_ALLOCATIONS:
                return None
            kind = function.attr
        else:
            callee = self._resolve(function)
            kind = self.allocating.get(id(callee)) if callee is not NOT_GLOBAL else None
            if kind is None:
                return None
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise Ineligible("* in an allocation")
            self.argument(argument)
        names = set()
        for keyword in node.keywords:
            if keyword.arg is None:
                raise Ineligible("** in an allocation")
            names.add(keyword.arg)
            self.argument(keyword.value)
        if not names <= POOLABLE_KEYWORDS:
            poolable = False
        elif kind in LIKE_ALLOCATIONS or kind in METHOD_ALLOCATIONS:
            poolable = True
        else:
            # torch.empty / empty_strided: without both, the result follows torch's global defaults.
            poolable = names == POOLABLE_KEYWORDS
        return kind, poolable

    def broadcast_rebinding(self, target, node) -> bool:
        """Whether `target = node` is `x, y = torch.broadcast_tensors(x, y)`: parameters rebound, in
        order, to what broadcasting them gives. Dropped from the native run (see `_plan`)."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))):
            return False
        import torch

        if self._resolve(node.func) is not torch.broadcast_tensors:
            return False
        sources = [a.id if isinstance(a, ast.Name) else None for a in node.args]
        targets = [t.id if isinstance(t, ast.Name) else None
                   for t in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target])]
        if (node.keywords or not sources or sources != targets or len(set(sources)) != len(sources)
                or not all(s in self.params for s in sources) or not isinstance(target, (ast.Tuple, ast.List))):
            raise Ineligible("torch.broadcast_tensors other than parameters rebound to themselves, in order")
        self.broadcast.update(sources)
        # Broadcasting needs tensors; the plan also requires it (`_check_arguments`).
        self.bases.update(sources)
        return True

    def new_name(self, name: str) -> None:
        if name in self.params or name in self.metadata or name in self.outputs or name == LAUNCHER:
            raise Ineligible(f"{name} is assigned twice or shadows a parameter")


def _wrapper_tree(function) -> ast.FunctionDef:
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as error:
        raise Ineligible(f"source unreadable ({type(error).__name__})") from None
    module = ast.parse(source)
    if len(module.body) != 1 or not isinstance(module.body[0], ast.FunctionDef):
        raise Ineligible("source is not one function")
    tree = module.body[0]
    if tree.name != function.__name__ or tree.decorator_list or not _same_code(module, function):
        raise Ineligible("source does not match the function")
    return tree


def _same_code(module: ast.Module, function) -> bool:
    """Whether the source compiles to a code object with the function's own names, locals, constants
    and parameters: the analysed code is the code that runs (a generated file changed after its module
    was loaded would differ in its kernel name, grid or constants). The bytecode itself is not
    compared: the loaded module may have been compiled with other flags than `compile` uses here."""
    try:
        compiled = compile(module, function.__code__.co_filename, "exec")
    except (SyntaxError, ValueError):
        return False
    codes = [c for c in compiled.co_consts if isinstance(c, types.CodeType) and c.co_name == function.__name__]
    if len(codes) != 1:
        return False
    code, own = codes[0], function.__code__
    return (code.co_names == own.co_names and code.co_varnames == own.co_varnames and code.co_consts == own.co_consts
            and code.co_argcount == own.co_argcount and code.co_kwonlyargcount == own.co_kwonlyargcount)


def _analyse(function) -> Analysis:
    if type(function) is not types.FunctionType:
        raise Ineligible("not a plain function")
    if function.__closure__:
        raise Ineligible("closure")
    tree = _wrapper_tree(function)
    checker = _Checker(function, tree)
    if len(checker.params) != function.__code__.co_argcount:
        raise Ineligible("source does not match the code object")
    allocations, launch, returned = [], None, None
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # a docstring
    final = body.pop() if body and isinstance(body[-1], ast.Return) else None
    for statement in body:
        if launch is not None:
            raise Ineligible("statements after the launch")
        if isinstance(statement, ast.Assign):
            if len(statement.targets) != 1:
                raise Ineligible("chained assignment")
            target = statement.targets[0]
            if checker.broadcast_rebinding(target, statement.value):
                continue
            found = checker.allocation(statement.value)
            if found is not None:
                if not isinstance(target, ast.Name):
                    raise Ineligible("allocation assigned to something other than a name")
                checker.new_name(target.id)
                checker.outputs[target.id] = len(allocations)
                allocations.append((target.id, statement.value, found[0], found[1]))
                continue
            checker.metadata_expression(statement.value)
            names = [target] if isinstance(target, ast.Name) else (
                list(target.elts) if isinstance(target, ast.Tuple) else None)
            if names is None or not all(isinstance(n, ast.Name) for n in names):
                raise Ineligible("assignment to something other than names")
            for name in names:
                checker.new_name(name.id)
                checker.metadata.add(name.id)
        elif isinstance(statement, ast.Assert):
            checker.metadata_expression(statement.test)
            if statement.msg is not None:
                checker.metadata_expression(statement.msg)
        elif (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
              and isinstance(statement.value.func, ast.Name) and statement.value.func.id == LAUNCHER):
            call = statement.value
            if len(call.args) < 2:
                raise Ineligible("launcher call without kernel and grid")
            kernel = call.args[0]
            if not isinstance(kernel, ast.Name) or checker._resolve(kernel) is NOT_GLOBAL:
                raise Ineligible("launched kernel is not a global")
            checker.metadata_expression(call.args[1])
            for argument in call.args[2:]:
                if isinstance(argument, ast.Starred):
                    raise Ineligible("* in the launch")
                checker.argument(argument)
            for keyword in call.keywords:
                if keyword.arg is None:
                    raise Ineligible("** in the launch")
                checker.metadata_expression(keyword.value)
            launch = call
        else:
            raise Ineligible(f"{type(statement).__name__} statement")
    if launch is None:
        raise Ineligible("no launch")
    # The return, once every output name is known.
    node = final.value if final is not None else None
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        returned = None
    elif checker._is_tensor_name(node):
        returned = node
    elif isinstance(node, ast.Tuple) and all(checker._is_tensor_name(e) for e in node.elts):
        returned = list(node.elts)
    else:
        raise Ineligible("returns something other than parameters and outputs")
    if any(isinstance(n, ast.Name) and n.id == LAUNCHER for n in ast.walk(tree) if n is not launch.func):
        raise Ineligible("_launcher used other than as the one launch")
    return Analysis(checker.params, allocations, launch, returned, _make_twin(function, tree, allocations),
                    frozenset(checker.bases), frozenset(checker.broadcast))


class _AllocationRewriter(ast.NodeTransformer):
    """`name = F(args)` → `name = __sl_alloc__(j, F, args)`; `x.new_empty(args)` → `__sl_alloc__(j,
    __sl_method_j__, x, args)`, with the unbound method injected (it is what the bound one calls)."""

    def __init__(self, calls):
        self.calls = {id(call): (index, kind) for index, (_, call, kind, _) in enumerate(calls)}
        self.methods = {}

    def visit_Call(self, node):
        found = self.calls.get(id(node))
        if found is None:
            return self.generic_visit(node)
        index, kind = found
        if kind in METHOD_ALLOCATIONS:
            name = f"__sl_method_{index}__"
            self.methods[name] = kind
            function = ast.Name(name, ast.Load())
            args = [node.func.value] + node.args
        else:
            function, args = node.func, node.args
        return ast.Call(ast.Name(ALLOC, ast.Load()), [ast.Constant(index), function] + args, node.keywords)


def _make_twin(function, tree: ast.FunctionDef, allocations):
    import torch

    rewriter = _AllocationRewriter(allocations)
    # Rewrite the original nodes (identity matters for finding the allocation calls), in a copy of the
    # function definition that shares them.
    definition = ast.FunctionDef(
        name=tree.name, args=tree.args, body=[rewriter.visit(s) for s in tree.body], decorator_list=[],
        returns=None, type_params=[], lineno=tree.lineno, col_offset=0)
    # The allocation recorder is a keyword-only parameter, so the twin reads the wrapper's own globals
    # (the same dict) and adds nothing to them.
    definition.args = ast.arguments(
        posonlyargs=[], args=[ast.arg(a.arg) for a in tree.args.args], vararg=None,
        kwonlyargs=[ast.arg(LAUNCHER), ast.arg(ALLOC)] + [ast.arg(m) for m in rewriter.methods],
        kw_defaults=[None] * (2 + len(rewriter.methods)), kwarg=None, defaults=[])
    module = ast.fix_missing_locations(ast.Module([definition], type_ignores=[]))
    code = compile(module, f"<swiftlaunch twin of {function.__code__.co_filename}>", "exec")
    namespace: dict = {}
    exec(code, function.__globals__, namespace)  # noqa: S102 -- the wrapper's own code, rewritten
    twin = namespace[tree.name]
    # The wrapper's defaults (a missing optional argument takes its default, as in the wrapper).
    twin.__defaults__ = function.__defaults__
    methods = {name: getattr(torch.Tensor, kind) for name, kind in rewriter.methods.items()}
    return twin, methods


_analyses: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def analyse(function) -> Analysis | str:
    """The wrapper's analysis, or why it cannot run natively (a str). Once per wrapper function."""
    try:
        return _analyses[function]
    except (KeyError, TypeError):
        pass
    try:
        result = _analyse(function)
    except Ineligible as why:
        result = f"helion native run: {why}"
    except (SyntaxError, ValueError, RecursionError) as error:
        result = f"helion native run: analysis failed ({type(error).__name__})"
    try:
        _analyses[function] = result
    except TypeError:
        pass
    return result


class _Recorder:
    def __init__(self, launcher, count):
        self.launcher = launcher
        self.allocations = [None] * count
        self.launches = []

    def alloc(self, index, function, *args, **kwargs):
        result = function(*args, **kwargs)
        self.allocations[index] = (function, args, kwargs, result)
        return result

    def launch(self, *args, **kwargs):
        self.launches.append((args, kwargs))
        return self.launcher(*args, **kwargs)


def _spec(node, value, analysis, args, outputs):
    """The spec of one argument: a current input, an output of this call, or a recorded constant."""
    if isinstance(node, ast.Name):
        if node.id in analysis.params:
            index = analysis.params.index(node.id)
            if index < len(args):
                if value is not args[index]:
                    if node.id in analysis.broadcast:
                        raise Ineligible("torch.broadcast_tensors changes a shape")
                    raise Ineligible(f"{node.id} is not the argument it names")
                return (INPUT, index)
            return (CONSTANT, value)  # the wrapper's default: absent in every call of this entry
        for index, (name, *_rest) in enumerate(analysis.allocations):
            if node.id == name:
                if value is not outputs[index]:
                    raise Ineligible(f"{node.id} is not the output it names")
                return (OUTPUT, index)
    return (CONSTANT, value)


def _plain_sizes(specs):
    """A recorded `torch.Size` passed to an allocation, as the tuple of its ints: torch's argument
    parser reads a size from a `torch.Size` markedly slower than from a tuple (per element checks for
    symbolic sizes), and gives the same sizes from either."""
    import torch

    return tuple((CONSTANT, tuple(value)) if kind == CONSTANT and type(value) is torch.Size else (kind, value)
                 for kind, value in specs)


def _call_specs(nodes, keyword_nodes, values, keywords, analysis, args, outputs):
    if len(nodes) != len(values) or [k.arg for k in keyword_nodes] != list(keywords):
        raise Ineligible("recorded call does not match its source")
    specs = [_spec(n, v, analysis, args, outputs) for n, v in zip(nodes, values)]
    specs += [_spec(k.value, keywords[k.arg], analysis, args, outputs) for k in keyword_nodes]
    return tuple(specs), (tuple(keywords) if keywords else None)


def _check_arguments(analysis, args, allocations) -> None:
    """What the plan takes as fixed per entry must be fixed by the guard: metadata read from a
    parameter only when it is a tensor (the guard compares its dtype, shape, strides and device), and
    an argument passed to an allocation only when the guard fixes the whole value (a tensor's
    metadata, or a dtype, device or str, compared by `==`), never a scalar the guard checks by type."""
    import torch

    tensor_types = (torch.Tensor, torch.nn.Parameter)
    for name in analysis.bases & set(analysis.params):
        index = analysis.params.index(name)
        if index >= len(args) or type(args[index]) not in tensor_types:
            raise Ineligible(f"metadata of {name}, which is not a tensor argument")
    fixed = tensor_types + (torch.dtype, torch.device, str)
    for _, specs, *_ in allocations:
        for kind, value in specs:
            if kind == INPUT and type(args[value]) not in fixed:
                raise Ineligible("an allocation depends on a scalar argument the guard checks by type only")


def _names_source(kind, call) -> int | None:
    """Index (in the allocation's values: positional, then keywords) of the tensor whose names the
    result copies (`empty_like`) or whose names make it raise (`new_empty*`); None for the others.
    Helion's guard does not compare names, so the pool asks per call."""
    if kind in METHOD_ALLOCATIONS:
        return 0
    if kind in LIKE_ALLOCATIONS:
        if call.args:
            return 0
        names = [k.arg for k in call.keywords]
        return names.index("input") if "input" in names else None
    return None


def _plan(analysis, recorder, args, result):
    outputs = [a[3] for a in recorder.allocations]
    if any(a is None for a in recorder.allocations) or len(recorder.launches) != 1:
        raise Ineligible("the recorded call did not allocate and launch as its source says")
    allocations = []
    for (name, call, kind, poolable), (function, values, keywords, _) in zip(analysis.allocations,
                                                                               recorder.allocations):
        nodes = ([call.func.value] + call.args) if kind in METHOD_ALLOCATIONS else call.args
        specs, names = _call_specs(nodes, call.keywords, values, keywords, analysis, args, outputs)
        allocations.append((function, _plain_sizes(specs), names, poolable, _names_source(kind, call)))
    _check_arguments(analysis, args, allocations)
    launch_args, launch_keywords = recorder.launches[0]
    specs, names = _call_specs(analysis.launch.args, analysis.launch.keywords, launch_args, launch_keywords,
                               analysis, args, outputs)
    if analysis.returned is None:
        if result is not None:
            raise Ineligible("returned value differs from its source")
        returned = (False, ())
    elif isinstance(analysis.returned, list):
        if type(result) is not tuple or len(result) != len(analysis.returned):
            raise Ineligible("returned value differs from its source")
        returned = (True, tuple(_spec(n, v, analysis, args, outputs) for n, v in zip(analysis.returned, result)))
    else:
        returned = (False, (_spec(analysis.returned, result, analysis, args, outputs),))
    if any(kind == CONSTANT for kind, _ in returned[1]):
        raise Ineligible("returns a constant")
    return (tuple(allocations), (specs, names), returned)


def record(run, launcher, args):
    """Runs `run(*args, _launcher=launcher)` once, as the first stage would, and returns `(result,
    plan)` where `plan` is what the native entry keeps (see `_plan`), or `(result, reason)` (a str)
    when this call cannot be reproduced natively. The call launches exactly once either way; an
    exception propagates as the wrapper's own would."""
    analysis = analyse(run)
    if isinstance(analysis, str):
        return run(*args, _launcher=launcher), analysis
    twin, methods = analysis.twin
    recorder = _Recorder(launcher, len(analysis.allocations))
    result = twin(*args, _launcher=recorder.launch, __sl_alloc__=recorder.alloc, **methods)
    try:
        return result, _plan(analysis, recorder, args, result)
    except Ineligible as why:
        return result, f"helion native run: {why}"
