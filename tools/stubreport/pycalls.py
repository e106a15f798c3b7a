"""The calls in a Python step, as :class:`.pyflow.Analyzer` judges them: the World's and fixtures'
methods, the rules of ``rules.toml``, the test code's helpers and classes, mutations of test state."""

from __future__ import annotations

import ast
import builtins

from .facts import EMPTY, REAL, M, P, R, Taint, real_atoms
from .pynodes import LOG_METHODS, MUTATORS, _callee_text, _chain, _key, _method, _root, _strip_subscript
from .pysource import ModuleInfo, qualified

_BUILTINS = frozenset(dir(builtins))


class CallAnalysis:
    """The call half of :class:`.pyflow.Analyzer` (mixed into it): uses its state and its expression,
    helper and bookkeeping methods (``taint``, ``_fixture``, ``_helper``, ``_evidence``...)."""

    def _args(self, node: ast.Call) -> tuple[list[ast.expr], list[Taint]]:
        args = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
        args += [k.value for k in node.keywords]
        return args, [self._passed(a) for a in args]

    def _passed(self, arg: ast.expr) -> Taint:
        """A fixture handed on as an argument is not read here (a helper reads what it needs of it)."""
        if isinstance(arg, ast.Name) and arg.id in self.fixtures:
            name = self.aliases.get(arg.id, arg.id)
            return frozenset({f"s:fx:{name}", f"s:fx:{name}.*"})
        return self.taint(arg)

    def _call(self, node: ast.Call) -> Taint:
        args, taints = self._args(node)
        argt = frozenset().union(*taints) if taints else EMPTY
        func = node.func
        root, chain = _chain(func)
        text = _callee_text(root, chain) if isinstance(root, ast.Name) else ast.unparse(func)
        if isinstance(root, ast.Name) and root.id in self.world and chain:
            return self._world_call(root.id, chain, argt, text, node, args)
        if isinstance(func, ast.Name):
            return self._name_call(func, args, taints, argt, node)
        if isinstance(func, ast.Attribute):
            qual = qualified(func, self.imports)
            if qual and isinstance(root, ast.Name) and root.id not in self.locals:
                return self._qualified_call(qual, text, args, taints, argt, node)
            return self._method_call(func, text, argt, node)
        base = self.taint(func)
        self._real_call(base, text, node)
        return base | argt

    def _real_call(self, base: Taint, text: str, node: ast.AST) -> None:
        cond = real_atoms(base)
        if cond:
            rule = "real.fixture" if any(a.startswith("s:fx:") for a in cond) else "real.state"
            if cond == REAL:
                rule = "real.data"
            self._evidence(rule, f"calls {text}()", node, cond)

    def _method_call(self, func: ast.Attribute, text: str, argt: Taint, node: ast.Call) -> Taint:
        method = func.attr
        if (
            isinstance(func.value, ast.Name)
            and func.value.id in self.fixtures
            and method in ("get", "pop", "setdefault")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):  # ``ctx.get("x")`` reads what was stored under "x"
            base = self._fixture(func.value.id, func.value, f"[{node.args[0].value}]")
            self._real_call(base, text, node)
            return base | argt
        owner_class = self._class_of(func.value)
        if owner_class is not None and (target := _method(owner_class[0], method)) is not None:
            # ``Command.run(...)``: a classmethod or staticmethod of the test code's own classes
            _, taints = self._args(node)
            static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in target.decorator_list)
            return self._helper(target, owner_class[1], node, text, taints, bound=not static)
        if isinstance(func.value, ast.Name) and func.value.id in self.instances:
            cls, owner = self.instances[func.value.id]
            target = _method(cls, method)
            if target is not None:
                _, taints = self._args(node)
                returned = self._helper(target, owner, node, text, taints, bound=True)
                base = self.taint(func.value)  # the instance itself may be a real handle too
                self._real_call(base, text, node)
                return returned | base
        target_root, _ = _root(func.value)
        base = self.taint(func.value)
        if method in MUTATORS and isinstance(target_root, ast.Name) and self._store(func.value, argt, node):
            return EMPTY
        if P in base and method in self.rules.path_io:
            self._evidence("real.io", f"calls {text}() on a filesystem path", node)
            return base | argt | REAL
        if M in base:
            self._note("mock.library", f"drives a mock ({text}())", node)
            return base | argt
        if method in LOG_METHODS and R not in base:
            self._note("output.log", f"logs ({text}())", node)
            return EMPTY
        self._real_call(base, text, node)
        return base | argt

    def _class_of(self, node: ast.AST) -> tuple[ast.ClassDef, ModuleInfo] | None:
        """The test-code class ``node`` names (``Command``, ``shell.Command``), if it is one."""
        if isinstance(node, ast.Name) and node.id not in self.locals:
            if node.id in self.module.classes:
                return self.module.classes[node.id], self.module
            qual = self.imports.get(node.id)
        else:
            qual = qualified(node, self.imports)
        if qual:
            module_name, _, name = qual.rpartition(".")
            owner = self.facts.modules.get(module_name)
            if owner is not None and name in owner.classes:
                return owner.classes[name], owner
        return None

    def _store(self, target: ast.AST, value: Taint, node: ast.AST) -> bool:
        """A mutation of a container (``x.append(v)``, ``x[k] = v``): test state gets ``value``."""
        root, first = _root(target)
        if not isinstance(root, ast.Name):
            return False
        name = root.id
        if name in self.world and first is not None and first != "[]":
            self.summary.write(self._world_slot(first), value)
            self._note("inert.state", f"sets {name}.{first}", node)
            return True
        if name in self.fixtures:
            self.summary.write(f"fx:{self.aliases.get(name, name)}.{_key(target)}", value)
            self._note("inert.state", f"sets {ast.unparse(target)} (fixture {name})", node)
            return True
        if name in self.locals:
            self.locals[name] = self.locals[name] | value
            return True
        if name in self.global_names or name in self.facts.module_globals(self.module):
            self.summary.write(f"g:{self.module.module_name}.{name}", value)
            self._note("inert.state", f"keeps module state {name}", node)
            return True
        qual = qualified(
            target if isinstance(target, ast.Attribute) else _strip_subscript(target), self.imports
        )
        if qual:
            rule = next(
                (
                    r
                    for prefix, r in self.rules.writes.items()
                    if qual == prefix or qual.startswith(prefix + ".")
                ),
                None,
            )
            if rule is not None:
                self._evidence(rule, f"sets {ast.unparse(target)}", node)
            else:
                self._note("inert.state", f"changes a library's module state ({ast.unparse(target)})", node)
            return True
        return False

    def _world_call(
        self, root: str, chain: list[str], argt: Taint, text: str, node: ast.Call, args: list[ast.expr]
    ) -> Taint:
        attr = chain[0]
        behave = self.facts.runner == "behave"
        if len(chain) == 1:
            if behave and attr in self.rules.context_inert_methods:
                return EMPTY
            if behave and attr == "execute_steps":
                return self._execute_steps(args, node)
            harness = self.facts.harness
            if harness is not None and attr in harness.inert_methods:
                self._note("inert.harness", f"calls {text}() (bookkeeping)", node)
                return EMPTY
            if harness is not None and (attr in harness.declared or harness.found_world):
                self._evidence("real.harness", f"calls {text}()", node)
                return REAL
            cond = self._slot_read(self._world_slot(attr), f"{root}.{attr}", node)
            return cond | argt
        if behave and attr in self.rules.captured and chain[-1] in self.rules.captured_inert_methods:
            self._note("inert.state", f"resets {root}.{attr} ({text}())", node)
            return EMPTY
        if behave and attr in self.rules.context_input:
            if chain[-1] == "skip":
                self._note("pending.marker", f"skips ({text}())", node)
            return EMPTY
        if chain[-1] in MUTATORS and len(chain) == 2:
            self.summary.write(self._world_slot(attr), argt)
            self._note("inert.state", f"sets {root}.{attr}", node)
            return EMPTY
        base = self._world_read(root, attr, node)
        if chain[-1] in LOG_METHODS and not argt:
            self._note("output.log", f"logs ({text}())", node)
        self._real_call(base, text, node)
        return base | argt

    def _execute_steps(self, args: list[ast.expr], node: ast.Call) -> Taint:
        text = args[0].value if args and isinstance(args[0], ast.Constant) else None
        if not isinstance(text, str) or self.facts.run_steps is None:
            self._evidence("real.steps", "runs steps it builds at run time (not analysed)", node)
            return REAL
        for func in self.facts.run_steps(text):
            self._evidence("real.steps", f"runs the step {func.name} ({func.where})", node,
                           frozenset({f"s:def:{func.where}"}))  # fmt: skip
        return EMPTY

    def _name_call(
        self, func: ast.Name, args: list[ast.expr], taints: list[Taint], argt: Taint, node: ast.Call
    ) -> Taint:
        name = func.id
        if name in self.locals or name in self.fixtures:
            base = self._name(func)
            if M in base:
                self._note("mock.library", f"drives a mock ({name}())", node)
                return base | argt
            self._real_call(base, name, node)
            return base | argt
        if name in self.module.functions:
            return self._helper(self.module.functions[name], self.module, node, name, taints)
        if name in self.module.classes:
            return self._construct(self.module.classes[name], self.module, node, name, taints, argt)
        qual = self.imports.get(name)
        if qual is None:
            for star in self.module.star_imports:
                owner = self.facts.modules.get(star)
                if owner is not None and name in owner.functions:
                    qual = f"{star}.{name}"
                    break
        if qual:
            return self._qualified_call(qual, name, args, taints, argt, node)
        if name in self.global_names or name in self.facts.module_globals(self.module):
            base = self._global(self.module, name, func)
            self._real_call(base, name, node)
            return base | argt
        if name in _BUILTINS:
            return self._apply_rule(self.rules.builtin(name).id, name, argt, node)
        if self.module.star_imports:  # from somewhere the star import brings in: not analysable here
            self._evidence("real.library", f"calls {name}() (from a star import)", node)
            return REAL | argt
        # a name nothing in the module binds (a fixture module, a conftest, an app's test utilities)
        self._evidence("real.library", f"calls {name}() (defined outside what the report reads)", node)
        return REAL | argt

    def _apply_rule(self, rule_id: str, text: str, argt: Taint, node: ast.AST) -> Taint:
        rule = self.rules.rule(rule_id)
        if rule.effect == "real":
            self._evidence(rule.id, f"calls {text}()", node)
            return REAL | argt
        if rule.effect == "mock":
            self._note(rule.id, f"builds or drives a mock ({text}())", node)
            return frozenset({M}) | argt
        if rule.effect == "output":
            self._note(rule.id, f"{rule.text} ({text}())", node)
            return EMPTY
        if rule.effect == "path":
            return frozenset({P}) | argt
        return argt  # inert (and pending in the middle of a body): values flow through

    def _qualified_call(
        self, qual: str, text: str, args: list[ast.expr], taints: list[Taint], argt: Taint, node: ast.Call
    ) -> Taint:
        rule = self.rules.for_name(qual)
        if rule is not None and not (rule.id == "inert.tooling" and self.facts.suite_module(qual)):
            return self._apply_rule(rule.id, text, argt, node)
        module_name, _, name = qual.rpartition(".")
        owner = self.facts.modules.get(module_name)
        if owner is not None:
            if name in owner.functions:
                return self._helper(owner.functions[name], owner, node, text, taints)
            if name in owner.classes:
                return self._construct(owner.classes[name], owner, node, text, taints, argt)
            if name in self.facts.module_globals(owner):
                base = self._global(owner, name, node)
                self._real_call(base, text, node)
                return base | argt
        top = qual.split(".")[0]
        if self.facts.harness_package and top == self.facts.harness_package:
            self._evidence("real.harness", f"calls {text}()", node)
            return REAL
        if self.facts.suite_module(qual) or owner is not None:
            self._evidence("real.product", f"calls {text}()", node)
            return REAL
        self._evidence("real.library", f"calls {text}()", node)
        return REAL
