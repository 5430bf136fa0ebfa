#!/usr/bin/env python3
"""Sanity check for the heldout8 retrieval set (synthetic DEMONSTRATION material)."""
import re, sys, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TYPES = {"local instruction", "guideline", "practice guideline", "review", "systematic review",
         "meta-analysis", "randomized controlled trial", "cohort", "case report", "textbook"}
DEMO = ("DEMONSTRATIONSMATERIALE/DEMONSTRATION MATERIAL — written for procedurewriter's "
        "retrieval benchmark; not clinical guidance")
errors = []
slugs = set()
words = {}
for p in sorted((ROOT / "docs").glob("*.md")):
    slug = p.stem
    slugs.add(slug)
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        errors.append(f"{slug}: bad slug")
    text = p.read_text(encoding="utf-8")
    m = re.match(r"\+\+\+\n(.*?)\n\+\+\+\n(.*)", text, re.S)
    if not m:
        errors.append(f"{slug}: no front matter"); continue
    try:
        fm = tomllib.loads(m.group(1))
    except Exception as e:
        errors.append(f"{slug}: front matter does not parse: {e}"); continue
    if set(fm) != {"title", "url", "year", "publication_type"}:
        errors.append(f"{slug}: unexpected keys {sorted(fm)}")
    if fm.get("publication_type") not in TYPES:
        errors.append(f"{slug}: bad publication_type {fm.get('publication_type')!r}")
    if not isinstance(fm.get("year"), int) or not 2014 <= fm["year"] <= 2024:
        errors.append(f"{slug}: bad year {fm.get('year')!r}")
    if not str(fm.get("url", "")).startswith("https://"):
        errors.append(f"{slug}: bad url")
    body = m.group(2)
    if body.split("\n", 1)[0] != DEMO:
        errors.append(f"{slug}: first body line is not the DEMONSTRATION line")
    words[slug] = len(body.split())

labels = tomllib.loads((ROOT / "labels.toml").read_text(encoding="utf-8"))
titles = labels.get("title", [])
labelled = set()
for t in titles:
    rel, par = t.get("relevant", []), t.get("partial", [])
    for s in rel + par:
        if s not in slugs:
            errors.append(f"{t['title']}: unknown slug {s}")
    both = set(rel) & set(par)
    if both:
        errors.append(f"{t['title']}: relevant and partial: {sorted(both)}")
    if len(rel) != len(set(rel)) or len(par) != len(set(par)):
        errors.append(f"{t['title']}: duplicate slug in a list")
    if not t.get("note"):
        errors.append(f"{t['title']}: missing note")
    labelled |= set(rel) | set(par)

print(f"documents: {len(slugs)}; titles: {len(titles)}; labelled at least once: {len(labelled)}; "
      f"never labelled (distractors): {len(slugs - labelled)}")
print("word counts: min %d, max %d" % (min(words.values()), max(words.values())))
print("longest:", ", ".join(f"{s} ({w})" for s, w in sorted(words.items(), key=lambda x: -x[1])[:4]))
for e in errors:
    print("ERROR:", e)
sys.exit(1 if errors else 0)
