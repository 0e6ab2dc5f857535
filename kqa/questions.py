"""Question files: ``question<TAB>answer1|answer2|...[<TAB>image path]`` one per line.

The optional third column is an image path relative to the file. Answers may be empty for
files that are only asked or linked, not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kqa.errors import LoadError
from kqa.load import read_text


@dataclass
class Question:
    text: str
    answers: list[str] = field(default_factory=list)
    image: Path | None = None
    source: str = ""
    line: int = 0


def read_questions(path: str | Path, require_answers: bool = False) -> list[Question]:
    """Parse a question file; errors name the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(path, 0, None, "no such question file")
    questions = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) > 3:
            raise LoadError(path, lineno, None, f"expected at most 3 tab-separated fields, found {len(parts)}")
        text = parts[0].strip()
        if not text:
            raise LoadError(path, lineno, "question", "empty question")
        answers = [a.strip() for a in parts[1].split("|") if a.strip()] if len(parts) > 1 else []
        if require_answers and not answers:
            raise LoadError(path, lineno, "answers", "no answers (expected question<TAB>answer1|answer2)")
        image = None
        if len(parts) == 3 and parts[2].strip():
            image = (path.parent / parts[2].strip()).resolve()
            if not image.is_file():
                raise LoadError(path, lineno, "image", f"image file {parts[2].strip()} not found")
        questions.append(Question(text, answers, image, str(path), lineno))
    if not questions:
        raise LoadError(path, 0, None, "no questions found")
    return questions
