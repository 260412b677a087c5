#!/usr/bin/env python3
"""Generates the Swift tokenizer's test fixture from the Python reference (Reference/clip_tokenizer.py).

    python Reference/make_tokenizer_cases.py --vocab Weights/bpe_simple_vocab_16e6.txt.gz \
        [--out Tests/ModelsTests/Fixtures/tokenizer/cases.json] \
        [--swift-tables Sources/Models/ActionCLIP/Tokenizer/TextCleanupTables.swift] \
        [--check GOLDEN.json]

cases.json is a list of objects:
  text, kind ("prompt" | "tricky" | "mojibake"), normalized, unpadded_ids (SOT + ids + EOT),
  ids (77 ids, zero padded) or null with "error" when the text is longer than the context,
  prompts also carry template_index, label_index, row_in_text_batch (= t * 10 + c).
When ftfy's mojibake repair (`fix_encoding`, not reproduced by the Swift port) changes the result, the case
also carries normalized_without_mojibake_repair / unpadded_ids_without_mojibake_repair /
ids_without_mojibake_repair: what ftfy.fix_text(text, fix_encoding=False) gives, which is what Swift must give.

--swift-tables writes the data tables the Swift clean-up needs, taken from the Python/ftfy versions that run
here: Python's html.entities.html5, ftfy's extra upper-case entities, and ftfy's WIDTH_MAP.
--check compares another cases file (same format, e.g. a golden file) against this reference and reports.
"""
import argparse
import html.entities
import json
import os
import sys

import ftfy
import ftfy.chardata
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_tokenizer  # noqa: E402

TEMPLATES = [
    "a photo of action {}", "a picture of action {}", "Human action of {}", "{}, an action",
    "{} this is an action", "{}, a video of action", "Playing action of {}", "{}",
    "Playing a kind of action, {}", "Doing a kind of action, {}", "Look, the human is {}",
    "Can you recognize the action of {}?", "Video classification of {}", "A video of {}",
    "The man is {}", "The woman is {}",
]
DEFAULT_LABELS = ["applauding", "dancing", "driving", "driving car", "driving truck", "eating", "punching",
                  "reading", "surfing", "talking phone"]

TRICKY = [
    # accents, combining marks, scripts
    "Café déjà vu — naïve résumé",
    "cafe\u0301 nai\u0308ve (combining marks, NFC composes them)",
    "a\u0308\u0301\u0323 stacked marks",
    "中文 한국어 Ελληνικά Русский",
    "日本語のテキストです",
    "ﾊﾝｶｸ ｶﾀｶﾅ ｶﾞ",
    "नमस्ते दुनिया",
    "ไทย ภาษา",
    "مرحبا بالعالم 123",
    # emoji, invisible characters
    "I ❤️ emoji 😀👍🏽 👨‍👩‍👧",
    "zero\u200bwidth joiner\u200dhere",
    "zero\u200bwidth ctrl\u0007bell tab\u000bvt",
    "bom\ufeffinside and \u206a deprecated format",
    "ansi \x1b[1;31mred\x1b[0m text",
    "c1 \x93quoted\x94 \x85 and \x80 and \x81",
    # case mapping
    "İSTANBUL İzmir",
    "ΟΔΟΣ ΣΑΣ Σ aΣ. ΣΑ Σ'Α ὈΔΥΣΣΕΎΣ",
    "STRASSE Straße ß ẞ",
    "ǅemal ǈuba Ǌoj",
    "ΐ ﬃ K Å",
    # width forms and ligatures
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３",
    "ｆｕｌｌ－ｗｉｄｔｈ！？　ideographic space ￡ ￥ ￣",
    "ﬁne ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǳ ǲ ǳ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ",
    # quotes and contractions
    "“Curly” ‘quotes’ ‛odd‟ ʼmodifier",
    "It’s we’ll they’re I’M YOU’VE he’d SHE’LL",
    "It's we'll they're I'M YOU'VE he'd SHE'LL",
    "'S 'T 'RE 'VE 'M 'LL 'D 'Sx 'really 'dd ''s rock'n'roll",
    "don't can't won't shouldn't y'all ma'am o'clock",
    "'ſ 'ﬅ <|ſtartoftext|>",
    # HTML entities
    "Tom &amp; Jerry",
    "&lt;b&gt;bold&lt;/b&gt;",
    "it&#39;s &#x27;quoted&#x27; &#X41;&#65;",
    "non&nbsp;breaking &copy; &reg; &trade; &hellip; &mdash; &ndash; &euro; &pound; &yen; &cent;",
    "&lsquo;single&rsquo; &ldquo;double&rdquo; &deg; &plusmn; &times; &divide; &frac12; &frac14; &frac34;",
    "&eacute;t&eacute; &Eacute; &EACUTE; &AMP; &ntilde; &uuml; &szlig;",
    "&amp;amp; double &amp;lt;escaped&amp;gt; &amp;amp;amp; triple",
    "legacy &amp without semicolon &copy2025 &notit; &notin; &ampx",
    "numeric &#0; &#13; &#128; &#150; &#x9F; &#xD800; &#x110000; &#1114111; &#65535; &#59; &#x3b; &#12ab;",
    "a < b &amp; c",
    "line one &amp; ok\nline two <tag> &amp; kept\nline three &amp; after",
    "first &amp; ok\r\nsecond &lt; third",
    "a < b &amp;amp;amp; c &EACUTE;",
    "one &amp;amp;amp; &EACUTE;\ntwo < &amp;amp;amp; &EACUTE;\nthree &amp;amp;amp; &EACUTE;",
    "&amp;lt;tag&amp;gt; &amp;EACUTE;",
    "&unknownentity; & alone &; &#; &#x; &#xZZ;",
    "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; long name",
    "&Tab;tab&NewLine;newline &nbsp;&nbsp;",
    # numbers and punctuation
    "pi is 3.14 and the year 2025, not 1,000,000",
    "Hello, World!!! ??? ... --- :-)",
    "½ ² ³ ① Ⅻ ٣ ൯ 𝟙",
    "$100 @user #tag 50% a+b=c [x] {y} (z) ~!@#$%^&*_=|\\/<>",
    # whitespace
    "multiple    spaces\tand\nnewlines \u00a0 nbsp\u3000ideographic  ",
    "   leading and trailing   ",
    "\t\n tabs\tand\r\nCRLF\rCR\u2028LS\u2029PS\u0085NEL \x1c\x1d\x1e\x1f separators ",
    "\u2002en\u2003em\u2009thin\u202fnarrow\u205fmath\u1680ogham",
    # special tokens
    "literal <|endoftext|> inside",
    "<|startoftext|>start and <|ENDOFTEXT|> upper",
    "x.<|endoftext|>y <|endoftext|",
    # degenerate
    "",
    "   ",
    "a",
    "!",
    "é",
    "a photo of action applauding",
    "talking phone",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    # over-long (expected error)
    " ".join(["word"] * 80),
    " ".join(["1"] * 76),
    " ".join(["1"] * 75),
]

MOJIBAKE = [
    "mojibake: cafÃ© rÃ©sumÃ©",
    "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.",
]


def entry(full, without, text, kind):
    result = clip_tokenizer.describe(full, text)
    result["kind"] = kind
    plain = clip_tokenizer.describe(without, text)
    if plain["unpadded_ids"] != result["unpadded_ids"] or plain["normalized"] != result["normalized"]:
        result["normalized_without_mojibake_repair"] = plain["normalized"]
        result["unpadded_ids_without_mojibake_repair"] = plain["unpadded_ids"]
        result["ids_without_mojibake_repair"] = plain["ids"]
        if kind != "mojibake":
            raise SystemExit(f"ftfy's mojibake repair changes a case not marked as mojibake: {text!r}")
    return result


def make_cases(vocab):
    full = clip_tokenizer.Tokenizer(vocab)
    without = clip_tokenizer.Tokenizer(vocab, fix_encoding=False)
    cases = []
    for t, template in enumerate(TEMPLATES):
        for c, label in enumerate(DEFAULT_LABELS):
            case = entry(full, without, template.format(label), "prompt")
            case.update(template_index=t, label_index=c, row_in_text_batch=t * len(DEFAULT_LABELS) + c)
            cases.append(case)
    cases += [entry(full, without, text, "tricky") for text in TRICKY]
    cases += [entry(full, without, text, "mojibake") for text in MOJIBAKE]
    return cases


def swift_tables():
    def hexes(value):
        return " ".join(f"{ord(ch):X}" for ch in value)

    html5 = html.entities.html5
    with_semicolon = {"&" + name: value for name, value in html5.items() if name.endswith(";")}
    ftfy_entities = ftfy.chardata.HTML_ENTITIES
    assert all(ftfy_entities[key] == value for key, value in with_semicolon.items())
    extra = {key: value for key, value in ftfy_entities.items() if key not in with_semicolon}
    width = ftfy.chardata.WIDTH_MAP
    lines = [
        "// Generated by Reference/make_tokenizer_cases.py --swift-tables; do not edit by hand.",
        f"// Sources: Python {sys.version.split()[0]} html.entities.html5 ({len(html5)} names),",
        f"// ftfy {ftfy.__version__} chardata.HTML_ENTITIES (extra upper-case names) and chardata.WIDTH_MAP.",
        "// Format: one entry per line, the key, a space, then the replacement's code points in hex.",
        "",
        "enum TextCleanupTables {",
        "    /// Python's `html.entities.html5`: names as `html.unescape` matches them after `&` (some end in `;`).",
        '    static let html5Entities = """',
    ]
    lines += [f"{name} {hexes(value)}" for name, value in sorted(html5.items())]
    lines += [
        '"""',
        "",
        "    /// Entities ftfy's `unescape_html` knows beyond html5's `;`-terminated names: the upper-case spelling",
        "    /// of every all-lower-case name that `html.unescape` leaves alone (e.g. `&EACUTE;`), mapped to the",
        "    /// upper-cased character. Keys include the `&` and `;`.",
        '    static let ftfyUpperCaseEntities = """',
    ]
    lines += [f"{name} {hexes(value)}" for name, value in sorted(extra.items())]
    lines += [
        '"""',
        "",
        "    /// ftfy's `fix_character_width` map: U+3000 and the NFKC form of U+FF01...U+FFEF where it differs.",
        '    static let widthMap = """',
    ]
    lines += [f"{code:X} {hexes(value)}" for code, value in sorted(width.items())]
    lines += ['"""', "}", ""]
    # Multi-line string literals need the closing delimiter's indentation on every line; use none.
    return "\n".join(lines)


def check(vocab, golden_path):
    full = clip_tokenizer.Tokenizer(vocab)
    golden = json.load(open(golden_path, encoding="utf-8"))
    agree = 0
    for case in golden:
        mine = clip_tokenizer.describe(full, case["text"])
        same = mine["ids"] == case["ids"]
        if "normalized" in case:
            same = same and mine["normalized"] == case["normalized"]
        if case["ids"] is None and "unpadded_ids" in case:
            same = same and mine["unpadded_ids"] == case["unpadded_ids"]
        agree += same
        if not same:
            print(f"DIFFERENT: {case['text']!r}")
    print(f"{agree}/{len(golden)} cases of {golden_path} agree with Reference/clip_tokenizer.py")
    return agree == len(golden)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", required=True)
    parser.add_argument("--out", default=None, help="write cases.json here")
    parser.add_argument("--swift-tables", default=None, help="write the generated Swift tables here")
    parser.add_argument("--check", default=None, help="compare a cases/golden JSON file with the reference")
    arguments = parser.parse_args()
    print(f"ftfy {ftfy.__version__}, regex {regex.__version__}, Python {sys.version.split()[0]}")
    if arguments.out:
        cases = make_cases(arguments.vocab)
        os.makedirs(os.path.dirname(os.path.abspath(arguments.out)), exist_ok=True)
        with open(arguments.out, "w", encoding="utf-8") as handle:
            json.dump(cases, handle, ensure_ascii=True, indent=None)
            handle.write("\n")
        print(f"wrote {len(cases)} cases to {arguments.out}")
    if arguments.swift_tables:
        with open(arguments.swift_tables, "w", encoding="utf-8") as handle:
            handle.write(swift_tables())
        print(f"wrote {arguments.swift_tables}")
    if arguments.check and not check(arguments.vocab, arguments.check):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
