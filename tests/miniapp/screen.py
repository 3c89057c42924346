"""Reading a Mini App screen as the cashier sees it: which screen, its texts and elements."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = []
        for child in self.children:
            parts.append(child.text if isinstance(child, Node) else child)
        return re.sub(r"[ \t\r\n\f]+", " ", "".join(parts)).strip(" ")

    def walk(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def all(self, tag: str | None = None, **attrs) -> list[Node]:
        """Descendants with this tag (any if None) and these attributes (data_testid ->
        data-testid; True means present)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.walk() if (tag is None or n.tag == tag) and all(
            (k in n.attrs) if v is True else n.attrs.get(k) == str(v)
            for k, v in wanted.items())]

    def one(self, tag: str | None = None, **attrs) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"expected one {tag} {attrs}, found {len(found)}"
        return found[0]

    def testid(self, name: str) -> list[Node]:
        return self.all(data_testid=name)


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v if v is not None else "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


class Screen:
    """The screen a Mini App response carries."""

    def __init__(self, response):
        self.status = response.status_code
        self.html = response.get_data(as_text=True)
        parser = _Parser()
        parser.feed(self.html)
        self.root = parser.root
        sections = self.root.all("section", data_screen=True)
        assert len(sections) == 1, f"expected one screen, got {len(sections)}"
        self.section = sections[0]

    @property
    def name(self) -> str:
        return self.section.attrs["data-screen"]

    @property
    def attrs(self) -> dict[str, str]:
        return self.section.attrs

    @property
    def text(self) -> str:
        return self.section.text

    def testid(self, name: str) -> list[Node]:
        return self.section.testid(name)

    def text_of(self, name: str) -> str:
        found = self.testid(name)
        assert len(found) == 1, f"expected one [data-testid={name}], found {len(found)}"
        return found[0].text

    def __repr__(self) -> str:
        return f"<Screen {self.name} {self.status}: {self.text[:200]}>"
