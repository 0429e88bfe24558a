"""How the commands find the error to print when a task group fails."""

from __future__ import annotations

from .._errors import AudianError

__all__ = ["audian_error_in"]


def audian_error_in(group: BaseExceptionGroup[BaseException]) -> AudianError | None:
    """The AudianError a task group's exception group carries, if that is all it carries."""
    errors: list[AudianError] = []
    rest: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        elif isinstance(exc, AudianError):
            errors.append(exc)
        else:
            rest.append(exc)

    walk(group)
    return errors[0] if errors and not rest else None
