"""Writes the distinct words of the demo model's training text, lowercased, one a line, sorted.

Tests use the list to tell English-like output (words the model read) from gibberish, without
shipping the text itself. Usage: words.py KJV_TEXT OUT_FILE
"""
import re
import sys

text_path, out_path = sys.argv[1], sys.argv[2]
words: set[str] = set()
with open(text_path, encoding="utf-8") as handle:
    for line in handle:
        verse = re.match(r"^\s+\d+ (.*)$", line)
        if verse:
            words.update(word.lower() for word in re.findall(r"[A-Za-z]+", verse.group(1)))
with open(out_path, "w", encoding="utf-8") as handle:
    handle.write("".join(f"{word}\n" for word in sorted(words)))
print(f"{len(words)} distinct words -> {out_path}", file=sys.stderr)
