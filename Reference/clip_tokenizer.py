#!/usr/bin/env python3
"""CLIP byte-level BPE tokenizer, written from docs/spec pipeline.md §6 (our own implementation).

It is the Python reference for the Swift `CLIPTokenizer` (Sources/Models/ActionCLIP/Tokenizer/):
clean-up with ftfy.fix_text + html.unescape twice + strip, whitespace collapse, str.lower(),
the CLIP pre-tokenizer regex (IGNORECASE), byte-to-unicode, and rank-ordered BPE merges.

`fix_encoding=False` reproduces what the Swift port does: everything ftfy.fix_text does except
mojibake repair (ftfy's heuristic `fix_encoding` step), which the Swift port does not implement.

CLI:  python Reference/clip_tokenizer.py --vocab PATH [--no-fix-encoding] TEXT...
prints one JSON object per text: {"text", "normalized", "ids" (77, padded) or "error", "unpadded_ids"}.
"""
import argparse
import gzip
import html
import json
import sys

import ftfy
import regex

START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
CONTEXT_LENGTH = 77
MERGE_COUNT = 49152 - 256 - 2  # lines 1..48894 of the merges file

PRE_TOKENIZER = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
WHITESPACE_RUN = regex.compile(r"\s+")


def byte_to_unicode():
    """Bytes 33-126, 161-172, 174-255 map to themselves; the other 68, ascending, to U+0100 + k."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {byte: chr(byte) for byte in printable}
    k = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(0x100 + k)
            k += 1
    # Vocabulary order: printable bytes ascending, then remapped ones ascending.
    order = printable + [byte for byte in range(256) if byte not in printable]
    return table, [table[byte] for byte in order]


def clean(text, fix_encoding=True):
    """ftfy.fix_text (default config), html.unescape twice, strip; then collapse whitespace, strip, lower."""
    text = ftfy.fix_text(text, fix_encoding=fix_encoding)
    text = html.unescape(html.unescape(text))
    text = text.strip()
    text = WHITESPACE_RUN.sub(" ", text)
    text = text.strip()
    return text.lower()


class Tokenizer:
    def __init__(self, vocab_path, fix_encoding=True):
        with gzip.open(vocab_path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
        self.byte_encoder, base = byte_to_unicode()
        vocab = base + [symbol + "</w>" for symbol in base] + ["".join(pair) for pair in merges]
        vocab += [START_OF_TEXT, END_OF_TEXT]
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.fix_encoding = fix_encoding
        self.cache = {START_OF_TEXT: [START_OF_TEXT], END_OF_TEXT: [END_OF_TEXT]}

    def bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            best = None
            for pair in zip(word, word[1:]):
                rank = self.ranks.get(pair)
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, pair)
            if best is None:
                break
            first, second = best[1]
            merged = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[piece] = word
        return word

    def normalize(self, text):
        return clean(text, self.fix_encoding)

    def encode(self, text):
        ids = []
        for piece in PRE_TOKENIZER.findall(self.normalize(text)):
            if piece not in (START_OF_TEXT, END_OF_TEXT):
                piece = "".join(self.byte_encoder[byte] for byte in piece.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self.bpe(piece))
        return ids

    def tokenize(self, text, context_length=CONTEXT_LENGTH):
        """[SOT] + ids + [EOT], zero-padded; raises RuntimeError when longer than the context."""
        ids = [self.encoder[START_OF_TEXT]] + self.encode(text) + [self.encoder[END_OF_TEXT]]
        if len(ids) > context_length:
            raise RuntimeError(f"Input {text} is too long for context length {context_length}")
        return ids + [0] * (context_length - len(ids))


def describe(tokenizer, text):
    unpadded = [tokenizer.encoder[START_OF_TEXT]] + tokenizer.encode(text) + [tokenizer.encoder[END_OF_TEXT]]
    result = {"text": text, "normalized": tokenizer.normalize(text), "unpadded_ids": unpadded}
    try:
        result["ids"] = tokenizer.tokenize(text)
    except RuntimeError as error:
        result["ids"] = None
        result["error"] = str(error)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", required=True, help="path to bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--no-fix-encoding", action="store_true", help="skip ftfy's mojibake repair (as the Swift port)")
    parser.add_argument("texts", nargs="+")
    arguments = parser.parse_args()
    tokenizer = Tokenizer(arguments.vocab, fix_encoding=not arguments.no_fix_encoding)
    for text in arguments.texts:
        print(json.dumps(describe(tokenizer, text), ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
