"""The language of the demo dataset: captions, question/answer rounds and answer options.

Every answer has a *meaning* (``("colour", "red")``, ``("yn", True)``, ``("count", 2)``,
``("generic",)`` …) and several paraphrases of it. The answer universe is every paraphrase of every
meaning (``ANSWER_MEANING``); options are drawn from it and never contain a second paraphrase of the
ground truth's meaning, so exactly one option is right.

A dialog keeps what has been said (objects *mentioned*, attributes *known*, the *focus* that "it"
refers to, the previous question) so that questions can lean on the history: "what color is it?",
"what about the other one?", "is the other one bigger?".
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from pipeline.data.visdial import OPTIONS, ROUNDS
from pipeline.demo.scenes import BACKGROUNDS, COLOURS, GRID, SHAPES, Scene, SceneObject

Meaning = tuple
GENERIC: Meaning = ("generic",)
HARD_NEGATIVES = 40  # at most this many options share the ground truth's kind (other meanings)
GENERIC_RATE = 0.06  # answerable questions answered with a generic "not sure" anyway
NUMBERS = ("zero", "one", "two", "three")  # counts of at most MAX_OBJECTS (3)
ROW_WORDS = ("top", "bottom")  # GRID = 2 rows and columns
COL_WORDS = ("left", "right")

GENERIC_ANSWERS = (
    "i can't tell",
    "not sure",
    "i don't know",
    "hard to say",
    "no idea",
    "i can't tell from the picture",
)
YES = {
    "it": ("yes", "yes it is", "yep", "i think so"),
    "there": ("yes", "yes, there is", "yep, i see one", "yes there is one"),
}
NO = {
    "it": ("no", "no it's not", "nope", "i don't think so"),
    "there": ("no", "no, there isn't", "nope, i don't see one", "no, i don't see any"),
}
UNANSWERABLE = (
    "is it shiny",
    "what is it made of",
    "is this a photo",
    "is the picture old",
    "who drew this",
    "is it sunny",
    "is it daytime",
    "is there any text",
)
# (kind, weight): how often each question kind is tried; inapplicable kinds are skipped. Colour,
# position and existence come first: random VGG-19 features carry colour and position well and
# shape weakly (docs/demo-dataset.md, "Why this design").
QUESTION_KINDS = (
    ("colour", 30),
    ("shape", 5),
    ("position", 24),
    ("size", 4),
    ("compare", 3),
    ("exist", 12),
    ("count", 6),
    ("more", 3),
    ("other", 14),
    ("background", 2),
    ("unanswerable", 3),
)
IT_RATE = 0.5  # the focus is called "it" this often (else by a description known from history)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def cell_names(row: int, col: int) -> tuple[str, str]:
    """(bare name, prepositional phrase) of a grid cell: ("top left", "at the top left")."""
    bare = f"{ROW_WORDS[row]} {COL_WORDS[col]}"
    return bare, f"at the {bare}"


def paraphrases(meaning: Meaning, style: str = "it") -> tuple[str, ...]:
    """The answer strings that say ``meaning``; ``style`` picks "yes it is" vs "yes, there is"."""
    kind = meaning[0]
    if kind == "colour":
        c = meaning[1]
        return (c, f"it's {c}", f"{c} i think")
    if kind == "background":
        b = meaning[1]
        return (b, f"it's {b}", f"the background is {b}")
    if kind == "shape":
        s, a = meaning[1], article(meaning[1])
        return (f"{a} {s}", f"it's {a} {s}", f"looks like {a} {s}", s)
    if kind == "position":
        bare, pp = cell_names(*meaning[1])
        return (bare, pp, f"it's {pp}")
    if kind == "yn":
        return (YES if meaning[1] else NO)[style]
    if kind == "count":
        n = meaning[1]
        if n == 0:
            return ("none", "zero", "there are none", "none at all")
        if n == 1:
            return ("one", "just one", "only one", "there is one")
        w = NUMBERS[n]
        return (w, f"there are {w}", f"i see {w}", f"{w} of them")
    if kind == "more":
        if meaning[1] is None:
            return ("no, that's all", "no, nothing else", "nope, that's it")
        pp = cell_names(*meaning[1])[1]
        return (f"yes, one more {pp}", f"yes, another one {pp}", f"yes, there's one {pp}")
    if kind == "generic":
        return GENERIC_ANSWERS
    raise ValueError(f"unknown meaning {meaning!r}")


def _all_meanings() -> list[tuple[Meaning, str]]:
    cells = [(r, c) for r in range(GRID) for c in range(GRID)]
    out: list[tuple[Meaning, str]] = [(("colour", c), "it") for c in COLOURS]
    out += [(("background", b), "it") for b in BACKGROUNDS]
    out += [(("shape", s), "it") for s in SHAPES]
    out += [(("position", cell), "it") for cell in cells]
    out += [(("yn", v), style) for v in (True, False) for style in ("it", "there")]
    out += [(("count", n), "it") for n in range(len(NUMBERS))]
    out += [(("more", cell), "it") for cell in [*cells, None]]
    return [*out, (GENERIC, "it")]


def _answer_universe() -> dict[str, Meaning]:
    universe: dict[str, Meaning] = {}
    for meaning, style in _all_meanings():
        for text in paraphrases(meaning, style):
            if universe.setdefault(text, meaning) != meaning:
                raise AssertionError(f"answer {text!r} has two meanings")
    return universe


ANSWER_MEANING: dict[str, Meaning] = _answer_universe()
ALL_ANSWERS: tuple[str, ...] = tuple(sorted(ANSWER_MEANING))


@functools.cache
def _candidates(meaning: Meaning) -> tuple[list[str], list[str]]:
    """(answers of other meanings, those of them of the same kind), both sorted."""
    allowed = [a for a in ALL_ANSWERS if ANSWER_MEANING[a] != meaning]
    return allowed, [a for a in allowed if ANSWER_MEANING[a][0] == meaning[0]]


def answer_options(gt: str, rng: random.Random) -> tuple[list[str], int]:
    """100 distinct options containing ``gt`` once, and no other paraphrase of its meaning.

    Hard negatives first (other meanings of the same kind: other colours for a colour answer),
    then a few generic answers (unless the truth is generic), then random answers of any kind.
    """
    meaning = ANSWER_MEANING[gt]
    allowed, same_kind = _candidates(meaning)
    chosen = rng.sample(same_kind, min(len(same_kind), HARD_NEGATIVES))
    if meaning != GENERIC:
        chosen += rng.sample(GENERIC_ANSWERS, rng.randint(3, len(GENERIC_ANSWERS)))
    taken = set(chosen)
    chosen += rng.sample([a for a in allowed if a not in taken], OPTIONS - 1 - len(chosen))
    rng.shuffle(chosen)
    gt_index = rng.randrange(OPTIONS)
    chosen.insert(gt_index, gt)
    return chosen, gt_index


@dataclass
class Turn:
    """One question and what its (non-generic) answer does to the dialog state."""

    question: str
    meaning: Meaning
    kind: str = ""  # the question kind (``QUESTION_KINDS``), set by ``next_turn``
    style: str = "it"  # which yes/no phrasing fits the question
    subject: int | None = None  # the object the round is about: the next focus
    learned: tuple[tuple[int, str], ...] = ()  # (object, attribute) the answer reveals
    asked: tuple[str, str | None] | None = None  # (attribute, size adjective) for "the other one"
    reveals_background: bool = False


# Referring expressions, preferred first: which known attributes name an object uniquely.
# Position and colour (what the features carry best) before shape; colours are unique in a scene.
_COMBOS = (
    ("position",),
    ("colour",),
    ("shape",),
    ("size", "shape"),
    ("shape", "position"),
)


def _value(obj: SceneObject, attr: str) -> object:
    return (obj.row, obj.col) if attr == "position" else getattr(obj, attr)


def _size_truth(obj: SceneObject, adjective: str) -> bool:
    return obj.size == ("small" if adjective == "small" else "big")


class DialogWriter:
    """Writes the caption and 10 rounds for one scene, tracking the dialog's history."""

    def __init__(self, scene: Scene, rng: random.Random):
        self.scene, self.rng, self.objs = scene, rng, scene.objects
        self.known: list[set[str]] = [set() for _ in self.objs]
        self.mentioned: list[int] = []  # recency order, most recent last
        self.focus: int | None = None
        self.background_known = False
        self.prev: tuple[str, int, str | None] | None = None  # (attribute, object, adjective)

    # -- history -----------------------------------------------------------------------------
    def mention(self, i: int) -> None:
        if i in self.mentioned:
            self.mentioned.remove(i)
        self.mentioned.append(i)
        self.focus = i

    def other(self) -> int | None:
        """ "The other one": the most recently mentioned object that is not the focus."""
        rest = [i for i in self.mentioned if i != self.focus]
        return rest[-1] if rest and self.focus is not None else None

    def ref(self, i: int, ask: str) -> str | None:
        """A phrase for object ``i`` that does not give away ``ask``; None if there is none."""
        if i == self.focus and self.rng.random() < IT_RATE:
            return "it"
        known = self.known[i] - {ask}
        for combo in _COMBOS:
            unique = sum(
                all(_value(o, a) == _value(self.objs[i], a) for a in combo) for o in self.objs
            )
            if set(combo) <= known and unique == 1:
                return self._phrase(self.objs[i], combo)
        return "it" if i == self.focus else None

    @staticmethod
    def _phrase(obj: SceneObject, combo: tuple[str, ...]) -> str:
        words = [getattr(obj, a) for a in ("size", "colour") if a in combo]
        words.append(obj.shape if "shape" in combo else "one")
        text = "the " + " ".join(words)
        if "position" in combo:
            text += " " + cell_names(obj.row, obj.col)[1]
        return text

    def target(self, attr: str) -> int | None:
        """A mentioned object whose ``attr`` is still unknown, preferring the focus."""
        todo = [i for i in self.mentioned if attr not in self.known[i]]
        if self.focus in todo and self.rng.random() < 0.6:
            return self.focus
        if todo:
            return self.rng.choice(todo)
        if self.mentioned and self.rng.random() < 0.3:  # answerable from the history alone
            return self.rng.choice(self.mentioned)
        return None

    # -- caption -----------------------------------------------------------------------------
    def caption(self) -> str:
        rng, n = self.rng, len(self.objs)
        chosen = rng.sample(range(n), rng.randint(1, min(2, n - 1)))
        phrases = []
        for i in chosen:
            obj, attrs = self.objs[i], {"shape"}
            if rng.random() < 0.5:
                attrs.add("colour")
            if rng.random() < 0.2:
                attrs.add("size")
            if rng.random() < 0.6:
                attrs.add("position")
            self.known[i] |= attrs
            self.mention(i)
            words = [getattr(obj, a) for a in ("size", "colour") if a in attrs] + [obj.shape]
            phrase = f"{article(words[0])} {' '.join(words)}"
            if "position" in attrs:
                phrase += " " + cell_names(obj.row, obj.col)[1]
            phrases.append(phrase)
        self.focus = chosen[0] if len(chosen) == 1 else None
        listing = (
            phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"
        )
        if rng.random() < 0.5:
            self.background_known = True
            template = rng.choice(
                (
                    "a picture of {x} on a {bg} background",
                    "some shapes on a {bg} background including {x}",
                    "a {bg} background with {x}",
                )
            )
        else:
            template = rng.choice(
                (
                    "there is {x} in this picture",
                    "a picture of {x} and some other shapes",
                    "{x} next to some other shapes",
                )
            )
        return template.format(x=listing, bg=self.scene.background)

    # -- question kinds: each returns a Turn, or None when it does not apply now -------------
    def ask_colour(self) -> Turn | None:
        i = self.target("colour")
        ref = None if i is None else self.ref(i, "colour")
        if ref is None:
            return None
        q = self.rng.choice(
            (
                "what color is {}",
                "what colour is {}",
                "which color is {}",
                "what is the color of {}",
            )
        )
        meaning = ("colour", self.objs[i].colour)
        return Turn(
            q.format(ref), meaning, subject=i, learned=((i, "colour"),), asked=("colour", None)
        )

    def ask_shape(self) -> Turn | None:
        i = self.target("shape")
        ref = None if i is None else self.ref(i, "shape")
        if ref is None:
            return None
        q = self.rng.choice(("what shape is {}", "what kind of shape is {}", "what is {}"))
        meaning = ("shape", self.objs[i].shape)
        return Turn(
            q.format(ref), meaning, subject=i, learned=((i, "shape"),), asked=("shape", None)
        )

    def ask_position(self) -> Turn | None:
        i = self.target("position")
        ref = None if i is None else self.ref(i, "position")
        if ref is None:
            return None
        q = self.rng.choice(
            ("where is {}", "where is {} in the picture", "which part of the picture is {} in")
        )
        obj = self.objs[i]
        meaning = ("position", (obj.row, obj.col))
        return Turn(
            q.format(ref), meaning, subject=i, learned=((i, "position"),), asked=("position", None)
        )

    def ask_size(self) -> Turn | None:
        i = self.target("size")
        ref = None if i is None else self.ref(i, "size")
        if ref is None:
            return None
        adjective = self.rng.choice(("big", "large", "small"))
        meaning = ("yn", _size_truth(self.objs[i], adjective))
        return Turn(
            f"is {ref} {adjective}",
            meaning,
            subject=i,
            learned=((i, "size"),),
            asked=("size", adjective),
        )

    def ask_compare(self) -> Turn | None:
        other = self.other()
        if other is None:
            return None
        me, you = self.objs[self.focus].size, self.objs[other].size
        q, truth = self.rng.choice(
            (
                ("is the other one bigger", you == "big" and me == "small"),
                ("is the other one smaller", you == "small" and me == "big"),
                ("is it bigger than the other one", me == "big" and you == "small"),
                ("are they the same size", me == you),
            )
        )
        return Turn(q, ("yn", truth))

    def ask_exist(self) -> Turn | None:
        """ "is there anything red / at the top left / a red circle / any circles": yes half the
        time (about an object not yet mentioned, when there is one), no otherwise."""
        rng, objs = self.rng, self.objs
        form = rng.choices(("colour", "position", "specific", "shape"), weights=(4, 4, 1, 1))[0]
        hidden = [i for i in range(len(objs)) if i not in self.mentioned]
        present = rng.random() < 0.5
        if present:
            j = rng.choice(hidden or range(len(objs)))
            colour, shape, cell = objs[j].colour, objs[j].shape, (objs[j].row, objs[j].col)
        else:
            colours = [c for c in sorted(COLOURS) if all(o.colour != c for o in objs)]
            cells = [(r, c) for r in range(GRID) for c in range(GRID)]
            cells = [x for x in cells if all((o.row, o.col) != x for o in objs)]
            shapes = [x for x in SHAPES if all(o.shape != x for o in objs)]
            if form == "shape" and not shapes:
                form = "colour"
            colour, cell = rng.choice(colours), rng.choice(cells)
            shape = rng.choice(shapes or SHAPES)
        if form == "colour":
            q = rng.choice(
                ("is there anything {c}", "is there {a} {c} one", "do you see anything {c}")
            )
            attrs: tuple[str, ...] = ("colour",)
        elif form == "position":
            q = rng.choice(("is there anything {p}", "is there a shape {p}", "is something {p}"))
            attrs = ("position",)
        elif form == "specific":
            q = rng.choice(("is there {a} {c} {s}", "do you see {a} {c} {s}"))
            attrs = ("colour", "shape")
        else:
            q = rng.choice(("are there any {s}s", "is there {sa} {s}"))
            attrs = ("shape",)
        text = q.format(c=colour, s=shape, p=cell_names(*cell)[1], a=article(colour),
                        sa=article(shape))  # fmt: skip
        if not present:
            return Turn(text, ("yn", False), style="there")
        same = [o for o in objs if all(_value(o, a) == _value(objs[j], a) for a in attrs)]
        if len(same) > 1:  # "are there any circles?" with two circles: no single new referent
            return Turn(text, ("yn", True), style="there")
        learned = tuple((j, a) for a in attrs)
        return Turn(text, ("yn", True), style="there", subject=j, learned=learned)

    def ask_count(self) -> Turn | None:
        rng, objs = self.rng, self.objs
        form = rng.choices(("shape", "total"), weights=(0.6, 0.4))[0]
        if form == "shape":
            s = rng.choice([o.shape for o in objs] if rng.random() < 0.6 else SHAPES)
            q = rng.choice(
                ("how many {}s are there", "how many {}s do you see", "how many {}s can you see")
            )
            return Turn(q.format(s), ("count", sum(o.shape == s for o in objs)))
        q = rng.choice(
            (
                "how many shapes are there",
                "how many objects are there",
                "how many things can you see",
            )
        )
        return Turn(q, ("count", len(objs)))

    def ask_more(self) -> Turn | None:
        q = self.rng.choice(
            (
                "is there anything else",
                "are there any other shapes",
                "anything else in the picture",
                "do you see anything else",
            )
        )
        hidden = [i for i in range(len(self.objs)) if i not in self.mentioned]
        if not hidden:
            return Turn(q, ("more", None))
        j = self.rng.choice(hidden)
        cell = (self.objs[j].row, self.objs[j].col)
        return Turn(q, ("more", cell), subject=j, learned=((j, "position"),))

    def ask_other(self) -> Turn | None:
        other = self.other()
        if self.prev is None or other is None or self.prev[1] != self.focus:
            return None
        attr, _, adjective = self.prev
        obj = self.objs[other]
        if attr == "size":
            meaning: Meaning = ("yn", _size_truth(obj, adjective or "big"))
        elif attr == "position":
            meaning = ("position", (obj.row, obj.col))
        else:
            meaning = (attr, getattr(obj, attr))
        q = self.rng.choice(
            ("what about the other one", "and the other one", "how about the other one")
        )
        return Turn(q, meaning, subject=other, learned=((other, attr),))

    def ask_background(self) -> Turn | None:
        if self.background_known:
            return None
        q = self.rng.choice(
            (
                "what color is the background",
                "what colour is the background",
                "what is the background color",
            )
        )
        return Turn(q, ("background", self.scene.background), reveals_background=True)

    def ask_unanswerable(self) -> Turn | None:
        return Turn(self.rng.choice(UNANSWERABLE), GENERIC)

    # -- rounds ------------------------------------------------------------------------------
    def next_turn(self, asked: set[str]) -> Turn:
        kinds = [k for k, _ in QUESTION_KINDS]
        weights = [w for _, w in QUESTION_KINDS]
        for _ in range(30):
            kind = self.rng.choices(kinds, weights=weights)[0]
            turn = getattr(self, f"ask_{kind}")()
            if turn is not None and turn.question not in asked:
                turn.kind = kind
                return turn
        turn = self.ask_count()  # always applies (a repeated question is fine now)
        turn.kind = "count"
        return turn

    def answer(self, turn: Turn) -> str:
        """Pick a paraphrase of the answer and update the history accordingly."""
        meaning = turn.meaning
        if meaning != GENERIC and self.rng.random() < GENERIC_RATE:
            meaning = GENERIC
        text = self.rng.choice(paraphrases(meaning, turn.style))
        if meaning == GENERIC:  # nothing learned; the question still moves the focus if it can
            if turn.subject in self.mentioned:
                self.mention(turn.subject)
            self.prev = None
            return text
        for i, attr in turn.learned:
            self.known[i].add(attr)
        self.background_known |= turn.reveals_background
        if turn.subject is not None:
            self.mention(turn.subject)
        self.prev = None if turn.asked is None else (turn.asked[0], turn.subject, turn.asked[1])
        return text

    def rounds(self) -> list[tuple[Turn, str]]:
        """The 10 rounds: each question (as a ``Turn``) with its answer text."""
        out: list[tuple[Turn, str]] = []
        asked: set[str] = set()
        for _ in range(ROUNDS):
            turn = self.next_turn(asked)
            asked.add(turn.question)
            out.append((turn, self.answer(turn)))
        return out
