"""Build-time fixtures for the text tokenizer tests (suite 'text').

Trains a small SentencePiece BPE model with LLaMA's settings (bpe, byte_fallback, split_digits,
identity normalization, no whitespace removal, whitespace-only pieces, unk/bos/eos = 0/1/2), adds
AnyGPT-style added tokens after the base vocab (as HF `tokenizer.add_tokens` does), and writes:
  OUT/spm_vocab.gguf      the vocab with llama.cpp's tokenizer keys (via gguf_writer.py)
  OUT/spm_expected.txt    test cases: text, expected ids for HF legacy=True and legacy=False,
                          expected decode; random id sequences with SentencePiece's decode
  OUT/spm_hostile/*.gguf  broken vocab files + OUT/spm_hostile.txt (file, expected error words)
Expected ids come from the sentencepiece library itself; the split on added tokens is HF's
Trie.split / LlamaTokenizer.tokenize (transformers 4.34), re-implemented here in Python.

usage: spm_make_model.py OUTDIR
"""

import os
import random
import sys
import tempfile

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_writer import GGUFWriter  # noqa: E402

SPIECE = "\u2581"
SPEECH = "\U0001F5E3\uFE0F"
IMAGE = "\U0001F440"
MUSIC = "\U0001F3B6"


# ---------------------------------------------------------------- tiny protobuf editing
# The model proto is edited without the protobuf package: only varint and length-delimited fields
# (and fixed32 for scores) occur in the messages touched here.

def _varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def _enc_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def pb_parse(b):
    fields, i = [], 0
    while i < len(b):
        key, i = _varint(b, i)
        fno, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        fields.append([fno, wt, v])
    return fields


def pb_build(fields):
    out = bytearray()
    for fno, wt, v in fields:
        out += _enc_varint(fno << 3 | wt)
        if wt == 0:
            out += _enc_varint(v)
        elif wt == 2:
            out += _enc_varint(len(v)) + v
        else:
            out += v
    return bytes(out)


def proto_edit(model, add_dummy_prefix=None, unused=()):
    """Set normalizer_spec.add_dummy_prefix and mark piece indices as UNUSED (type 5)."""
    top = pb_parse(model)
    idx = 0
    for f in top:
        if f[0] == 1 and f[1] == 2:  # SentencePiece
            if idx in unused:
                sub = [g for g in pb_parse(f[2]) if g[0] != 3] + [[3, 0, 5]]
                f[2] = pb_build(sub)
            idx += 1
        if f[0] == 3 and f[1] == 2 and add_dummy_prefix is not None:  # NormalizerSpec
            sub = [g for g in pb_parse(f[2]) if g[0] != 3] + [[3, 0, int(add_dummy_prefix)]]
            f[2] = pb_build(sub)
    return pb_build(top)


# ---------------------------------------------------------------- corpus

WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no will up more out who can what "
         "said about other into than its time only could new them man some these then two first may any like now my "
         "such make over our even most me state after also made many did must before back see through way where get "
         "much go well your know should down work year because come people just say each those take day good how long "
         "speech image music picture describe transcribe voice assistant please generate human language model token "
         "sound audio piano guitar melody rhythm camera photo beautiful sunny beach mountain river city night").split()
FOREIGN = ["café", "naïve", "résumé", "Zürich", "straße", "façade", "jalapeño", "Ångström", "über", "coöperate",
           "東京", "中文", "日本語", "한국어", "Привет", "мир", "Ελληνικά", "שלום", "مرحبا", "हिन्दी", "ไทย"]
EMOJI = ["😀", "👍", "🎉", "❤️", "👨‍👩‍👧", "🏳️‍🌈", "👩🏽‍💻", "🇫🇷", "✨"]


def training_corpus(rng):
    lines = []
    for _ in range(6000):
        n = rng.randint(3, 18)
        ws = []
        for _ in range(n):
            r = rng.random()
            if r < 0.86:
                w = rng.choice(WORDS)
            elif r < 0.93:
                w = rng.choice(FOREIGN)
            elif r < 0.97:
                w = str(rng.randint(0, 99999))
            else:
                w = rng.choice(EMOJI)
            if rng.random() < 0.1:
                w = w.capitalize()
            ws.append(w)
        sep = rng.choice([" ", " ", " ", "  ", ", ", " - "])
        line = sep.join(ws) + rng.choice([".", "!", "?", "", ":", ";"])
        if rng.random() < 0.1:
            line = "    " + line
        if rng.random() < 0.05:
            line = line.replace(" ", "\t", 1)
        lines.append(line)
    return lines


# ---------------------------------------------------------------- added tokens

ROLE = ["[Human]", "[MMGPT]", "[AnyGPT]", "<eoh>", "<eos>", "<eom>", "<-Ins->", "<-Res->", "<eot>"]
# a few extra strings that exercise HF's trie: a prefix of another token; a token ("RS") inside
# another one ("%QRST") that HF's lookahead misses when the longer one ends one character after it;
# and one ("#XYZW" around "XY") that the lookahead does find
QUIRK = ["@@", "@@@", "%QRST", "RS", "#XYZW", "XY"]


def added_tokens():
    toks = list(ROLE)
    toks += ["<%s%d>" % (IMAGE, i) for i in range(64)] + ["<soim>", "<eoim>"]
    toks += ["<%s%d>" % (SPEECH, i) for i in range(64)] + ["<sosp>", "<eosp>"]
    toks += ["<%s%d>" % (MUSIC, i) for i in range(64)] + ["<somu>", "<eomu>"]
    toks += QUIRK
    return toks


# ---------------------------------------------------------------- HF's split (Trie.split)

class Trie:
    """HF transformers' Trie: split() scans left to right keeping every partial match; on the
    first finished match it looks ahead for the longest one (also from earlier starts) and cuts."""

    def __init__(self, words):
        self.root = {}
        for w in words:
            node = self.root
            for ch in w:
                node = node.setdefault(ch, {})
            node[""] = 1

    def split(self, text):
        states = {}  # start -> node, insertion order == start order
        offsets = [0]
        skip = 0
        for current, ch in enumerate(text):
            if skip and current < skip:
                continue
            to_remove = set()
            reset = False
            for start, node in states.items():
                if "" in node:
                    for lookstart, looknode in states.items():
                        if lookstart > start:
                            break
                        elif lookstart < start:
                            lookahead_index = current + 1
                            end = current + 1
                        else:
                            lookahead_index = current
                            end = current
                        nxt = text[lookahead_index] if lookahead_index < len(text) else None
                        while nxt in looknode:
                            looknode = looknode[nxt]
                            lookahead_index += 1
                            if "" in looknode:
                                start = lookstart
                                end = lookahead_index
                                skip = lookahead_index
                            if lookahead_index == len(text):
                                break
                            nxt = text[lookahead_index]
                    offsets.append(start)
                    offsets.append(end)
                    reset = True
                    break
                elif ch in node:
                    states[start] = node[ch]
                else:
                    to_remove.add(start)
            if reset:
                states = {}
            else:
                for s in to_remove:
                    del states[s]
            if ch in self.root:
                states[current] = self.root[ch]
        for start, node in states.items():
            if "" in node:
                offsets.append(start)
                offsets.append(len(text))
                break
        offsets.append(len(text))
        out, start = [], 0
        for end in offsets:
            if start >= end:
                continue
            out.append(text[start:end])
            start = end
        return out


class HFLlama:
    """LlamaTokenizer.tokenize + convert_tokens_to_ids (slow, transformers 4.34) on a sp model."""

    def __init__(self, sp, sp_nodummy, added, special, legacy):
        self.sp, self.sp_nd = sp, sp_nodummy
        self.added = added  # str -> id (special tokens and added tokens)
        self.special = special
        self.legacy = legacy
        self.trie = Trie(added.keys())
        self.unk_len = len(sp_nodummy.encode("<unk>", out_type=str))

    def _tokenize(self, text):
        if self.legacy:
            return self.sp.encode(text, out_type=str)
        toks = self.sp_nd.encode(text, out_type=str)
        if not text.startswith((SPIECE, " ")):
            return toks
        toks = self.sp_nd.encode("<unk>" + text, out_type=str)
        return toks[self.unk_len:] if len(toks) >= self.unk_len else toks

    def tokenize(self, text):
        if not self.legacy and len(text) > 0:
            text = SPIECE + text.replace(SPIECE, " ")
        out = []
        for seg in self.trie.split(text):
            if not seg:
                continue
            if seg in self.added:
                out.append(seg)
            else:
                out.extend(self._tokenize(seg))
        if not self.legacy and len(out) > 1 and out[0] == SPIECE and out[1] in self.special:
            out = out[1:]
        return out

    def encode(self, text, bos_id):
        ids = [self.added[t] if t in self.added else self.sp.piece_to_id(t) for t in self.tokenize(text)]
        return [bos_id] + ids


# ---------------------------------------------------------------- test corpus

def test_corpus(rng, added):
    c = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "a", "A", "Hello world", "hello world.",
        " leading space", "trailing space ", "  two leading", "two trailing  ", "multiple   inner    spaces",
        "tabs\tand\nnewlines\r\n", "line1\nline2\n\nline4", "12345", "3.14159 and 2,718", "year 2024 vs 1999",
        "0000000000", "café naïve résumé", "Zürich straße", "東京 中文 日本語", "한국어 Привет мир",
        "Ελληνικά שלום مرحبا", "हिन्दी ไทย", "😀 👍 🎉", "family 👨‍👩‍👧 flag 🏳️‍🌈 coder 👩🏽‍💻 🇫🇷",
        "e\u0301 a\u0300 o\u0308 n\u0303", "combining: q\u0307\u0323 x\u0332\u0332", "ZWJ alone \u200d here",
        "NFKC not applied: ｆｕｌｌ ＡＢＣ ① ㎏ ﬁ", "ligature ﬁ ﬂ", "\u2581 literal lower block \u2581\u2581",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𓀀 🀄", "rare: ꙮ ᚠᛇᚻ ⵣ ꧁꧂", "\u00a0nbsp\u00a0here\u3000ideographic space",
        "控制字符\u0001\u0002\u007f", "null\u0000byte", "\ufeffBOM at start", "\ufffd replacement char",
        "Please transcribe this speech into written text.",
        "You are an AI assistant named MMGPT who can understand and generate multimodal content, including text, "
        "speech, images and audio.",
        "[Human]: Please describe the picture briefly. <soim><👀1><👀22><👀63><eoim><eoh> [MMGPT]:",
        "[Human]: <sosp><🗣️0><🗣️12><🗣️63><eosp> Please transcribe the given speech.<eoh>\n[MMGPT]:",
        "[Human]: compose music.<eoh> [MMGPT]: <somu><🎶5><🎶17><🎶2><🎶40><eomu><eos>",
        "reply text<eot>\n<sosp><🗣️3><🗣️4><eosp>",
        "<eoh><eos><eom><eot>", "<-Ins-> instruction <-Res-> response", "[Human][MMGPT][AnyGPT]",
        "x[Human]y", " [Human] ", "  <eoh>  ", "<eoh> [MMGPT]", "<sosp> <🗣️1> <eosp>", "<🗣️1><🗣️2>",
        "<🗣️64> is not a token", "<🗣️> empty", "<👀99999>", "< 🗣️1>", "<🗣1> without FE0F",
        "<s> literal bos </s> literal eos <unk> literal unk", "text<s>", "<s>", "</s>", "<unk>", " <s>",
        "@@", "@@@", "@@@@", "@@@@@", "a@@b@@@c", "%QRST", "%QRSTU", "x%QRSx", "RSVP RS", "%QRS", "%QR", "#XYZW", "a#XYZWb", "#XYZ", "#XY", "XYZW",
        "<<eoh>>", "<eo<eoh>", "[[Human]]", "<eoh", "eoh>", "[Human",
    ]
    for t in added:
        c.append(t)
        c.append("a" + t + "b")
        c.append(" " + t + " ")
    # byte fallback only: characters the small model never saw
    c += ["\U0001F9EC\U0001F9EA\U0001F52C", "Ꭰ Ꭱ Ꭲ", "\u0f00\u0f01", "𐍈𐌰𐌹", "\U000E0041\U000E0042", "\u10ff\u11ff"]
    # random mixtures
    pool = WORDS + FOREIGN + EMOJI + added[:20] + ["\n", "\t", "  ", "1234", "ß", "⁇", "\U0001F9EC", "<", ">", "▁"]
    for _ in range(300):
        n = rng.randint(1, 14)
        parts = [rng.choice(pool) for _ in range(n)]
        seps = [rng.choice(["", " ", " ", "  ", "\n"]) for _ in range(n)]
        c.append("".join(p + s for p, s in zip(parts, seps)))
    c.append(" ".join(rng.choice(WORDS) for _ in range(2000)))  # long line: the O(n log n) merge
    return c


def hexs(s):
    return s.encode("utf-8").hex() if isinstance(s, str) else s.hex()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1234)
    corpus = training_corpus(rng)
    with tempfile.TemporaryDirectory() as td:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus), model_prefix=os.path.join(td, "m"), model_type="bpe",
            vocab_size=1500, character_coverage=0.9995, byte_fallback=True, split_digits=True,
            split_by_unicode_script=True, split_by_number=True, split_by_whitespace=True,
            allow_whitespace_only_pieces=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
            add_dummy_prefix=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentencepiece_length=16,
            num_threads=2, minloglevel=2)
        with open(os.path.join(td, "m.model"), "rb") as f:
            model = f.read()
    sp0 = spm.SentencePieceProcessor(model_proto=model)
    # mark a few merged pieces UNUSED: SentencePiece still merges through them and then splits
    # them back (resegmentation); the tests cover that path too
    unused = []
    for i in range(sp0.get_piece_size()):
        p = sp0.id_to_piece(i)
        if sp0.is_unknown(i) or sp0.is_control(i) or sp0.is_byte(i):
            continue
        if p in ("▁th", "▁the", "ing", "▁a"):
            unused.append(i)
    model = proto_edit(model, unused=set(unused))
    sp = spm.SentencePieceProcessor(model_proto=model)
    sp_nd = spm.SentencePieceProcessor(model_proto=proto_edit(model, add_dummy_prefix=False))
    assert all(sp.is_unused(i) for i in unused)

    n_sp = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n_sp):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    added = added_tokens()
    added_map = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for t in added:
        added_map[t] = len(tokens)
        tokens.append(t)
        scores.append(-1000.0)
        types.append(4)

    def vocab_writer(toks=tokens, sc=scores, ty=types, model_name="llama", extra=None, skip=()):
        w = GGUFWriter()
        w.add("general.architecture", "llama")
        kv = [("tokenizer.ggml.model", model_name, None), ("tokenizer.ggml.tokens", toks, None),
              ("tokenizer.ggml.scores", sc, "f32"), ("tokenizer.ggml.token_type", ty, "i32"),
              ("tokenizer.ggml.bos_token_id", 1, "u32"), ("tokenizer.ggml.eos_token_id", 2, "u32"),
              ("tokenizer.ggml.unknown_token_id", 0, "u32"), ("tokenizer.ggml.padding_token_id", 0, "u32"),
              ("tokenizer.ggml.add_bos_token", True, None), ("tokenizer.ggml.add_eos_token", False, None)]
        known = {k for k, _, _ in kv}
        kv += [(k, v, kind) for k, (v, kind) in (extra or {}).items() if k not in known]  # keys beyond llama's
        for k, v, kind in kv:
            if k in skip:
                continue
            if extra and k in extra:
                v, kind = extra[k]
            w.add(k, v, kind=kind)
        return w

    vocab_writer().write(os.path.join(out, "spm_vocab.gguf"))

    special = {"<unk>", "<s>", "</s>"}
    hf_legacy = HFLlama(sp, sp_nd, added_map, special, legacy=True)
    hf_first = HFLlama(sp, sp_nd, added_map, special, legacy=False)

    a_id = sp.piece_to_id("a")
    assert sp.id_to_piece(a_id) == "a"

    def ref_decode(ids):
        """SentencePiece decode, added tokens as their literal strings (the C decoder's contract).
        Runs of sp ids after the first are decoded behind an "a" so their first piece keeps its space."""
        out_s, run, first = "", [], True
        for i in list(ids) + [None]:
            if i is not None and i < n_sp:
                run.append(i)
                continue
            if run:
                out_s += sp.decode(run) if first else sp.decode([a_id] + run)[1:]
                run = []
            first = False
            if i is not None:
                out_s += tokens[i]
        return out_s

    tests = test_corpus(rng, added)
    n_rt = 0
    with open(os.path.join(out, "spm_expected.txt"), "w") as f:
        f.write("# text tokenizer expectations: T text(hex), L ids (HF legacy=True), F ids (legacy=False),\n"
                "# D decode of L ids (hex), R 1 when that decode is the text; Z random ids + D decode\n")
        f.write("N %d\n" % len(tokens))
        for s in tests:
            lid = hf_legacy.encode(s, 1)
            fid = hf_first.encode(s, 1)
            d = ref_decode(lid)
            rt = int(d == s)
            n_rt += rt
            f.write("T %s\nL %s\nF %s\nD %s\nR %d\n" % (hexs(s), " ".join(map(str, lid)), " ".join(map(str, fid)),
                                                        hexs(d), rt))
        # malformed UTF-8 (C callers can pass any bytes; SentencePiece reads each bad byte as U+FFFD)
        for x in [b"ab\xffc", b"\xe2\x96", b"caf\xc3", b"\xc3\xa9\xa9", b"\xf0\x9f\x98", b"\xed\xa0\x80 surrogate",
                  b"\xc0\xaf overlong", b"\xf8\x88\x80\x80\x80", b"trail\x80\x80 end", b" \xfe\xff ",
                  b"\xe2\x96\x81\xe2\x96 broken lower block", b"x\xf4\x90\x80\x80 above U+10FFFF"]:
            lid = [1] + sp.encode(x)
            y = b"\xe2\x96\x81" + x.replace(b"\xe2\x96\x81", b" ")
            fid = [1] + [sp.piece_to_id(p) for p in sp_nd.encode(b"<unk>" + y, out_type=str)[hf_first.unk_len:]]
            f.write("T %s\nL %s\nF %s\nD %s\nR 0\n" % (hexs(x), " ".join(map(str, lid)), " ".join(map(str, fid)),
                                                        hexs(sp.decode(lid))))
        # decoder stress: random sp ids, heavy on byte tokens (split and broken UTF-8 sequences)
        byte_ids = [i for i in range(n_sp) if sp.is_byte(i)]
        utf8_ids = []
        for ch in "é中😀👨‍👩‍👧\U0001F9EC":
            utf8_ids.append([sp.piece_to_id("<0x%02X>" % b) for b in ch.encode("utf-8")])
        for k in range(400):
            ids = []
            for _ in range(rng.randint(0, 24)):
                r = rng.random()
                if r < 0.35:
                    ids.append(rng.choice(byte_ids))
                elif r < 0.6:
                    ids.extend(rng.choice(utf8_ids))
                elif r < 0.66:
                    seq = rng.choice(utf8_ids)
                    ids.extend(seq[:rng.randint(1, len(seq))])  # truncated character
                elif r < 0.72:
                    ids.append(rng.choice([0, 1, 2]))
                else:
                    ids.append(rng.randrange(3, n_sp))
            f.write("Z %s\nD %s\n" % (" ".join(map(str, ids)), hexs(sp.decode(ids))))

    # hostile vocab files
    hd = os.path.join(out, "spm_hostile")
    os.makedirs(hd, exist_ok=True)
    bad = []

    def hostile(name, words, **kw):
        vocab_writer(**kw).write(os.path.join(hd, name + ".gguf"))
        bad.append((name, words))

    hostile("model_gpt2", "gpt2", model_name="gpt2")
    hostile("no_tokens", "tokenizer.ggml.tokens", skip=("tokenizer.ggml.tokens",))
    hostile("scores_short", "array lengths differ", sc=scores[:-1])
    hostile("types_short", "array lengths differ", ty=types[:-3])
    hostile("scores_i32", "tokenizer.ggml.scores", extra={"tokenizer.ggml.scores": ([1] * len(tokens), "i32")})
    hostile("bad_type", "unknown type 9", ty=types[:10] + [9] + types[11:])
    hostile("bos_range", "BOS id", extra={"tokenizer.ggml.bos_token_id": (len(tokens), "u32")})
    hostile("unk_range", "unknown-token id", extra={"tokenizer.ggml.unknown_token_id": (10**6, "u32")})
    hostile("bad_utf8", "not valid UTF-8", toks=tokens[:50] + [b"ab\xff"] + tokens[51:])
    hostile("overlong_utf8", "not valid UTF-8", toks=tokens[:50] + [b"\xc0\xaf"] + tokens[51:])
    bi = [i for i in range(n_sp) if sp.is_byte(i)]
    hostile("byte_missing", "byte fallback needs all 256", ty=[1 if i == bi[7] else t for i, t in enumerate(types)])
    hostile("byte_malformed", "not <0xNN>", toks=[("<0x4G>" if i == bi[3] else t) for i, t in enumerate(tokens)])
    hostile("duplicate", "same string", toks=tokens[:-1] + [tokens[-2]])
    hostile("empty_token", "empty string", toks=tokens[:60] + [""] + tokens[61:])
    hostile("add_bos_wrong_type", "add_bos_token", extra={"tokenizer.ggml.add_bos_token": (7, "u32")})
    hostile("model_not_string", "tokenizer.ggml.model", extra={"tokenizer.ggml.model": (3, "u32")})
    # not hostile: the prefix-mode keys, expected to load ("=MODE")
    hostile("ok_hf_legacy_false", "=FIRST", extra={"anygpt.tokenizer.hf_legacy": (False, "bool")})
    hostile("ok_no_space_prefix", "=NONE", extra={"tokenizer.ggml.add_space_prefix": (False, "bool")})
    with open(os.path.join(out, "spm_hostile.txt"), "w") as f:
        for name, words in bad:
            f.write("%s\t%s\n" % (name, words))
    print("spm fixtures: %d sp pieces, %d added, %d test lines (%d round-trip), %d unused pieces" %
          (n_sp, len(added), len(tests), n_rt, len(unused)))


if __name__ == "__main__":
    main()
