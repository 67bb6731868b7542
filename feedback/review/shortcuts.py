"""The review screen's keyboard shortcuts: one list, which the page's help panel shows and its script binds.

A key is written as modifiers and a key joined by "+": ``Ctrl+Enter``, ``Alt+A``, ``Ctrl+Alt+F``,
``Alt+ArrowDown``, ``Alt+1-9`` (a digit, which scores), or one character (``B``, ``?``, ``+``).
Letters with Alt are matched by the key's position (``KeyA``), as Alt changes the character typed on
some systems; Ctrl+Alt is not matched when it is AltGr typing a character.

Shortcuts of one character (WCAG 2.1.4) can be turned off on the page ("Single-key shortcuts").
Alt+F and Alt+S open a browser menu in some browsers (Alt+F the main menu, Alt+S Firefox's History
menu): those actions also answer Ctrl+Alt+F and Ctrl+Alt+S.
"""

from __future__ import annotations

from dataclasses import dataclass

MODIFIERS = ("Ctrl", "Alt", "Shift")
KEY_NAMES = {"ArrowDown": "↓", "ArrowUp": "↑", "Escape": "Esc", "1-9": "1\u20139"}


@dataclass(frozen=True)
class Shortcut:
    action: str
    keys: tuple[str, ...]
    help: str
    note: str = ""

    @property
    def single(self) -> bool:
        """Every key of this shortcut is one character with no modifier: the kind that can be turned off."""
        return all(len(key) == 1 for key in self.keys)

    def as_config(self) -> dict:
        return {"action": self.action, "keys": list(self.keys), "single": self.single}

    def display(self) -> list[list[str]]:
        """Each key as the parts the help panel shows in <kbd>: [["Ctrl", "Alt", "F"], ...]."""
        return [[KEY_NAMES.get(part, part) for part in _parts(key)] for key in self.keys]


def _parts(key: str) -> list[str]:
    if len(key) == 1:
        return [key]
    parts = key.split("+")
    if parts[-1] == "":  # "Ctrl++"
        parts = [*parts[:-2], "+"]
    return parts


MENU_CLASH = "Alt+{0} opens a browser menu in some browsers: Ctrl+Alt+{0} does the same."

SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("save", ("Ctrl+Enter",), "Save the turn (stored as accepted when nothing in the draft changed)"),
    Shortcut("accept", ("Alt+A", "Ctrl+Alt+A"), "Accept the draft as drafted"),
    Shortcut("reject", ("Alt+R", "Ctrl+Alt+R"), "Reject the draft (asks for the reason; again to confirm)"),
    Shortcut("flag", ("Ctrl+Alt+F", "Alt+F"), "Flag the sample (then 1 to 3, Enter)", MENU_CLASH.format("F")),
    Shortcut(
        "skip",
        ("Ctrl+Alt+S", "Alt+S"),
        "Skip the sample (it comes back at the end of your queue)",
        MENU_CLASH.format("S"),
    ),
    Shortcut("next", ("Alt+N", "Ctrl+Alt+N"), "Next sample"),
    Shortcut("next-field", ("Alt+ArrowDown",), "Next field"),
    Shortcut("previous-field", ("Alt+ArrowUp",), "Previous field"),
    Shortcut("next-turn", ("Alt+J", "Ctrl+Alt+J"), "Next turn"),
    Shortcut("previous-turn", ("Alt+K", "Ctrl+Alt+K"), "Previous turn"),
    Shortcut("score", ("Alt+1-9",), "Score the focused criterion (1 to 9 alone on a focused score)"),
    Shortcut("boxes", ("B",), "Boxes on or off"),
    Shortcut("zoom-in", ("+", "="), "Zoom in (drag to pan)"),
    Shortcut("zoom-out", ("-",), "Zoom out"),
    Shortcut("fit", ("0",), "Fit the image"),
    Shortcut("guidelines", ("G",), "Guidelines and rubric"),
    Shortcut("help", ("?",), "This help"),
    Shortcut("close", ("Escape",), "Close a panel or dialog; leave a text field"),
)


def shortcuts_config() -> list[dict]:
    return [shortcut.as_config() for shortcut in SHORTCUTS]
