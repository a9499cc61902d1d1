"""Jinja2 rendering for config templates and check arguments: sandboxed, and strict — an
undefined variable is an error located in the runbook or template file, never ''."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jinja2
from jinja2.utils import missing

from drill.errors import Diagnostic, InputError
from drill.runbook.bounds import Budget, TemplateLimit, bounded_environment, rendering

logger = logging.getLogger(__name__)

_QUOTED = re.compile(r"'([^']+)'")


@dataclass(frozen=True)
class Origin:
    """Where a template's text lives: line 1 of the template is ``line`` of ``file``, and
    each template line starts at column ``col`` (the block scalar's indentation)."""

    file: str
    line: int = 1
    col: int = 1


class Names(dict[str, Any]):
    """A mapping that knows its name in the template context, for error messages."""

    label = ""

    @classmethod
    def labelled(cls, label: str, values: Mapping[str, Any]) -> Names:
        names = cls(values)
        names.label = label
        return names


class _Undefined(jinja2.StrictUndefined):
    """StrictUndefined whose message names what exists, so a typo is easy to see."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if self._undefined_obj is missing:
            return f"undefined variable '{name}' (templates see: vars, host, mode, runbook)"
        obj = self._undefined_obj
        if isinstance(obj, Names) and obj.label:
            known = ", ".join(sorted(str(k) for k in obj)) or "nothing"
            return f"undefined '{obj.label}.{name}' ({obj.label} has: {known})"
        if isinstance(obj, Mapping):
            known = ", ".join(sorted(str(k) for k in obj)) or "nothing"
            return f"undefined key '{name}' (the mapping has: {known})"
        return f"'{name}' is undefined on a {type(obj).__name__} value"


_ENV = bounded_environment(_Undefined)


def build_context(
    *,
    vars_: Mapping[str, Any],
    host: Mapping[str, Any] | None,
    mode: str,
    runbook: Mapping[str, Any],
) -> dict[str, Any]:
    """The names a template sees: vars, host (absent for steps without hosts), mode,
    runbook."""
    context: dict[str, Any] = {
        "vars": Names.labelled("vars", vars_),
        "mode": mode,
        "runbook": Names.labelled("runbook", runbook),
    }
    if host is not None:
        view = Names.labelled("host", host)
        if isinstance(host.get("data"), Mapping):
            view["data"] = Names.labelled("host.data", host["data"])
        context["host"] = view
    return context


class RunbookFacts(Protocol):
    """The parts of a runbook templates see as ``runbook`` and ``mode``."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def mode(self) -> str: ...


def runbook_context(
    runbook: RunbookFacts, vars_: Mapping[str, Any], host: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The one context of every template, at validation and at run time."""
    facts = {
        "name": runbook.name,
        "description": runbook.description,
        "owner": runbook.owner,
        "mode": runbook.mode,
    }
    return build_context(vars_=vars_, host=host, mode=runbook.mode, runbook=facts)


def render_in(
    text: str,
    origin: Origin,
    runbook: RunbookFacts,
    vars_: Mapping[str, Any],
    host: Mapping[str, Any] | None,
) -> str:
    """THE render entry point: validation (drill.runbook.validate), the loaded runbook and
    the steps at run time all render through it, so what validated is what runs."""
    return render(text, runbook_context(runbook, vars_, host), origin=origin)


def render(template_text: str, context: Mapping[str, Any], *, origin: Origin) -> str:
    """Render template_text; any failure raises InputError located in origin's file.

    Rendering is bounded (drill.runbook.bounds): loop iterations, string sizes, number
    sizes, nesting and time; a template that exceeds a bound is invalid input."""
    try:
        template = _ENV.from_string(template_text)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno or 1
        message = f"template syntax: {exc.message}"
        raise InputError([_diagnostic(origin, template_text, line, None, message)]) from None
    except (RecursionError, SyntaxError, MemoryError, TemplateLimit):
        # Python's own compiler refuses > 20 nested blocks; deep expressions overflow the
        # parser's recursion.
        message = "template is nested too deeply (simplify its expressions and blocks)"
        raise InputError([_diagnostic(origin, template_text, 1, None, message)]) from None
    except Exception as exc:  # jinja folds constants while compiling: the sandbox may refuse
        line = _template_line(exc)
        message = f"template error: {type(exc).__name__}: {exc}"
        raise InputError([_diagnostic(origin, template_text, line, None, message)]) from None
    budget = Budget()
    try:
        with rendering(budget):
            return budget.collect(template.generate(dict(context)))
    except jinja2.UndefinedError as exc:
        line = _template_line(exc)
        message = str(exc)
        name = _QUOTED.search(message)
        found = name.group(1) if name else None
        raise InputError([_diagnostic(origin, template_text, line, found, message)]) from None
    except TemplateLimit as exc:
        message = f"{LIMIT_MESSAGE}: {exc}"
        line = _template_line(exc)
        raise InputError([_diagnostic(origin, template_text, line, None, message)]) from None
    except (RecursionError, MemoryError) as exc:
        message = f"{LIMIT_MESSAGE}: {_LIMIT_WORDS[type(exc)]}"
        raise InputError([_diagnostic(origin, template_text, 1, None, message)]) from None
    except Exception as exc:  # user expressions can raise anything (TypeError, ZeroDivision...)
        line = _template_line(exc)
        message = f"template error: {type(exc).__name__}: {exc}"
        raise InputError([_diagnostic(origin, template_text, line, None, message)]) from None


LIMIT_MESSAGE = "template exceeds a limit"
_LIMIT_WORDS: dict[type[BaseException], str] = {
    RecursionError: "recursion too deep",
    MemoryError: "out of memory",
}


def _template_line(exc: BaseException) -> int:
    """Jinja rewrites tracebacks so frames of the template carry template line numbers."""
    line = 1
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _diagnostic(origin: Origin, text: str, line: int, name: str | None, message: str) -> Diagnostic:
    lines = text.splitlines() or [""]
    line = min(max(line, 1), len(lines))
    col = 1
    if name is not None:
        found = re.search(rf"(?<![\w.]){re.escape(name)}\b|\.{re.escape(name)}\b", lines[line - 1])
        if found:
            col = found.start() + 1 + (1 if found.group().startswith(".") else 0)
    if line == 1:
        return Diagnostic(origin.file, origin.line, origin.col + col - 1, message)
    return Diagnostic(origin.file, origin.line + line - 1, origin.col + col - 1, message)
