"""The one bounded Jinja2 environment: sandboxed, immutable, and limited in work and size.

A template is input from whoever wrote the runbook; rendering it must end quickly and in
little memory whatever it says. Limits (per render):

* loop iterations over all ``for`` loops together: :data:`MAX_ITERATIONS`; one ``range``:
  :data:`MAX_RANGE` items;
* wall-clock time: :data:`MAX_SECONDS`, checked at every loop iteration and every call;
* strings and lists built by ``*``, ``+``, ``~``, ``%``, ``join``, ``replace``, ``center``,
  ``ljust``/``rjust``/``zfill``, ``indent``, ``batch``...: :data:`MAX_SIZE` items;
* format widths and precisions (``'%0999999d'``, ``'{:>999999}'``): :data:`MAX_WIDTH`;
* integers: :data:`MAX_INT_BITS` bits for ``**`` and ``*`` results;
* ``lipsum``: at most :data:`MAX_LIPSUM` paragraphs; the output: :data:`MAX_OUTPUT` chars;
* no mutation of what a template sees (``vars.l.append(...)`` is refused).

A template that exceeds one raises :class:`TemplateLimit`; nesting too deep for Python's
compiler or recursion limit is caught by the caller.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

MAX_ITERATIONS: Final = 1_000_000
MAX_SECONDS: Final = 2.0
MAX_SIZE: Final = 2_000_000
MAX_WIDTH: Final = 10_000
MAX_INT_BITS: Final = 100_000
MAX_LIPSUM: Final = 100
MAX_RANGE: Final = 100_000
MAX_HEAVY_TEXT: Final = 100_000
MAX_OUTPUT: Final = 16_000_000

_PERCENT_SPEC: Final = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|[0-9]+)?(?:\.(\*|[0-9]+))?")
_BRACE_SPEC: Final = re.compile(r"\{[^{}]*\}")


class TemplateLimit(jinja2.exceptions.SecurityError):
    """A template went over one of this module's limits."""


class Budget:
    """The work one render may still do."""

    def __init__(self) -> None:
        self.iterations = MAX_ITERATIONS
        self.deadline = time.monotonic() + MAX_SECONDS

    def charge(self, count: int = 1) -> None:
        self.iterations -= count
        if self.iterations < 0:
            raise TemplateLimit(f"more than {MAX_ITERATIONS:,} loop iterations")
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"rendering took longer than {MAX_SECONDS:g}s")

    def collect(self, chunks: Iterable[str]) -> str:
        out: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateLimit(f"output larger than {MAX_OUTPUT:,} characters")
            out.append(chunk)
            self.charge(0)
        return "".join(out)


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "drill_template_budget", default=None
)


@contextlib.contextmanager
def rendering(budget: Budget) -> Iterator[None]:
    token = _CURRENT.set(budget)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _charge(count: int = 1) -> None:
    budget = _CURRENT.get()
    if budget is not None:
        budget.charge(count)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | bytes) else 0


def _check_size(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise TemplateLimit(f"{what} would be {size:,} long (limit {MAX_SIZE:,})")


def _check_width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
        raise TemplateLimit(f"{what} {value:,} is larger than {MAX_WIDTH:,}")


def check_percent_format(fmt: str) -> None:
    """``'%05d' % x`` widths and precisions are bounded; ``*`` (width from data) is refused.

    >>> check_percent_format("%05d %-10s %.3f")
    >>> check_percent_format("%01000000000d")
    Traceback (most recent call last):
    ...
    drill.runbook.bounds.TemplateLimit: format width 1,000,000,000 is larger than 10,000
    """
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise TemplateLimit("'*' widths in % formats are not allowed")
            if part:
                _check_width(int(part), "format width")


def check_brace_format(fmt: str) -> None:
    """``'{:>10}'.format(x)``: the same bound for str.format specs (nested fields refused)."""
    for match in _BRACE_SPEC.finditer(fmt):
        spec = match.group()[1:-1]
        _, _, tail = spec.partition(":")
        for number in re.findall(r"[0-9]+", tail):
            _check_width(int(number), "format width")
    if re.search(r"\{[^{}]*\{", fmt):
        raise TemplateLimit("nested fields in str.format specs are not allowed")


def _bounded_iter(value: Any) -> Iterator[Any]:
    for item in value:
        _charge()
        yield item


def _concat(values: list[Any]) -> str:
    texts = [str(v) for v in values]
    _check_size(sum(len(t) for t in texts), "a string built with '~'")
    return "".join(texts)


# Pre-checks for the str methods and filters that can build big strings: each is given the
# call's arguments (the object first) and raises before any memory is used.


def _padded(obj: Any, width: Any = 0, *args: Any, **kwargs: Any) -> None:
    _check_width(width if width is not None else 0, "width")


def _joined(sep: Any, items: Any = (), *args: Any, **kwargs: Any) -> None:
    if isinstance(items, list | tuple):
        size = sum(_size(i) for i in items) + _size(sep) * len(items)
        _check_size(size, "a joined string")


def _join_filter(items: Any, sep: Any = "", *args: Any, **kwargs: Any) -> None:
    _joined(sep, items)


def _replaced(obj: Any, old: Any = "", new: Any = "", *args: Any, **kwargs: Any) -> None:
    if isinstance(obj, str) and isinstance(old, str) and isinstance(new, str):
        count = len(obj) + 1 if not old else len(obj) // len(old)
        _check_size(len(obj) + count * len(new), "a replaced string")


def _indented(obj: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    lines = str(obj).count("\n") + 1
    if isinstance(width, int):
        _check_width(width, "indent width")
        _check_size(_size(obj) + width * lines, "an indented string")
    elif isinstance(width, str):
        _check_size(_size(obj) + len(width) * lines, "indented text")


def _batched(obj: Any, count: Any = 1, *args: Any, **kwargs: Any) -> None:
    _check_width(count, "batch/slice size")


def _heavy_text(obj: Any, *args: Any, **kwargs: Any) -> None:
    """wordwrap and urlize do far more work than their input's size: keep it small."""
    if _size(obj) > MAX_HEAVY_TEXT:
        raise TemplateLimit(f"text for wordwrap/urlize longer than {MAX_HEAVY_TEXT:,}")


def _formatted(obj: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(obj, str):
        check_percent_format(obj)


def _expanded(obj: Any, tabsize: Any = 8, *args: Any, **kwargs: Any) -> None:
    _check_width(tabsize, "tab size")
    if isinstance(tabsize, int):
        _check_size(_size(obj) * max(tabsize, 1), "an expanded string")


_CHECKS: Final[dict[str, Callable[..., None]]] = {
    "center": _padded,
    "ljust": _padded,
    "rjust": _padded,
    "zfill": _padded,
    "expandtabs": _expanded,
    "join": _joined,
    "join_filter": _join_filter,
    "replace": _replaced,
    "indent": _indented,
    "batch": _batched,
    "slice": _batched,
    "format_filter": _formatted,
    "heavy_text": _heavy_text,
}
_FILTER_CHECKS: Final = {
    "center": "center",
    "join": "join_filter",
    "replace": "replace",
    "indent": "indent",
    "batch": "batch",
    "slice": "slice",
    "format": "format_filter",
    "wordwrap": "heavy_text",
    "urlize": "heavy_text",
}


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Every filter checks the time budget before and after it runs (a chain of filters on
    a big string must not run past it); some also check their arguments first."""
    check = _CHECKS.get(_FILTER_CHECKS.get(name, ""))
    pass_arg = getattr(func, "jinja_pass_arg", None)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _charge(0)
        if check is not None:
            # Filters that want the environment or context get it as the first argument.
            check(*(args[1:] if pass_arg is not None else args), **kwargs)
        result = func(*args, **kwargs)
        _charge(0)
        return result

    if pass_arg is not None:
        guarded.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return guarded


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    from jinja2.utils import generate_lorem_ipsum

    _check_width(n, "lipsum paragraphs")
    if n > MAX_LIPSUM or min > MAX_WIDTH or max > MAX_WIDTH:
        raise TemplateLimit(f"lipsum is limited to {MAX_LIPSUM} paragraphs")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimit(f"range of {len(numbers):,} items (limit {MAX_RANGE:,})")
    return numbers


class _Bounded(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every `for` goes through a counting iterator, every `~` through a size check.
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_drill_iter", [], [], None, None)
            loop.iter.set_lineno(loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            items = nodes.List(list(concat.nodes))
            bounded = nodes.Filter(items, "_drill_concat", [], [], None, None)
            concat.nodes = [bounded]
            bounded.set_lineno(concat.lineno)
        return tree

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _charge(0)
        if operator_name == "**":
            _check_power(left, right)
            return operator.pow(left, right)
        if operator_name == "*":
            _check_product(left, right)
        elif operator_name == "+":
            _check_size(_size(left) + _size(right), "a string or list built with '+'")
        elif operator_name == "%" and isinstance(left, str):
            check_percent_format(left)
        return super().call_binop(context, operator_name, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _charge(0)
        # The sandbox hands out str.format wrapped; the bound method is behind __wrapped__.
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        if isinstance(owner, str):
            check = _CHECKS.get(name)
            if check is not None:
                check(owner, *args, **kwargs)
            if name == "format":
                check_brace_format(owner)
            elif name == "format_map":
                raise TemplateLimit("str.format_map is not allowed")
        return super().call(__context, __obj, *args, **kwargs)


def _check_power(left: Any, right: Any) -> None:
    if isinstance(right, int | float) and abs(right) > 1000:
        raise TemplateLimit(f"exponent {right:g} is larger than 1,000")
    if isinstance(left, int) and isinstance(right, int) and right > 0:
        bits = max(left.bit_length(), 1) * right
        if bits > MAX_INT_BITS:
            raise TemplateLimit(f"a power of about {bits:,} bits (limit {MAX_INT_BITS:,})")


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise TemplateLimit(f"a product of about {bits:,} bits (limit {MAX_INT_BITS:,})")
        return
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            _check_size(len(seq) * count, "a repeated string or list")


def bounded_environment(undefined: type[jinja2.Undefined]) -> jinja2.Environment:
    """The environment every drill template is rendered in."""
    env = _Bounded(undefined=undefined, keep_trailing_newline=True, autoescape=False)
    for name, func in list(env.filters.items()):
        env.filters[name] = _guard_filter(name, func)
    env.filters["_drill_iter"] = _bounded_iter
    env.filters["_drill_concat"] = _concat
    env.globals["lipsum"] = _lipsum
    env.globals["range"] = _range
    return env
