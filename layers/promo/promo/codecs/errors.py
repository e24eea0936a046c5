"""One mapping point per protocol from domain exceptions to that protocol's error answer."""

from collections.abc import Mapping


class ErrorTable[Answer]:
    """Domain exception type → a protocol's answer, resolved along the exception's class chain,
    so a protocol lists only the distinctions it makes."""

    def __init__(self, answers: Mapping[type[Exception], Answer], fallback: Answer) -> None:
        self._answers = dict(answers)
        self._fallback = fallback

    def answer(self, error: Exception) -> Answer:
        for cls in type(error).__mro__:
            if cls in self._answers:
                return self._answers[cls]
        return self._fallback
