#!/usr/bin/env python3
"""Writes the all-MiniLM-L6-v2 reference that hetrun's tokenizer and embed workload are
checked against, so CI needs no PyTorch:

  sentences.txt        the test sentences, one per line (UTF-8; English, Chinese, accents,
                       emoji, punctuation runs, over-long words, mixed scripts, long lines)
  ids.txt              Hugging Face `tokenizers` ids per sentence ([CLS] ... [SEP]),
                       truncated at the model's max_seq_length (256), as sentence-transformers does
  embeddings_f32.npy   sentence-transformers embeddings (mean pooling, L2 normalised), float32

Run with an interpreter that has torch, tokenizers and sentence-transformers, e.g.
  /usr/bin/python3 -m venv --system-site-packages /tmp/st && /tmp/st/bin/pip install \
      "sentence-transformers==2.7.0" "transformers==4.40.2"
  /tmp/st/bin/python tests/data/minilm/make_reference.py [MODEL_DIR]
(MODEL_DIR from scripts/get-model.sh). The sentences are fixed; re-running reproduces the files
up to the last bits of the embeddings.
"""
import json
import os
import random
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def sentences():
    s = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "A woman is playing violin.",
        "Two men pushed carts through the woods.",
        "A man is riding a white horse on an enclosed ground.",
        "A monkey is playing drums.",
        "Someone in a gorilla costume is playing a set of drums.",
        "The new movie is awesome",
        "The cat sits outside",
        "The new movie is so great",
        "A man is playing guitar",
        "The dog plays in the garden",
        "Do you like pizza?",
        "hello world",
        "Hello, World!",
        "HELLO WORLD!!!",
        "hetrun launches jobs on heterogeneous HPC nodes with accelerators from several vendors.",
        "Sentence embeddings map text to a 384-dimensional vector space.",
        "The quick brown fox jumps over the lazy dog.",
        "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
        "Call me Ishmael.",
        "I can't believe it's not butter!",
        "She said: \"don't go there\" -- and left.",
        "Prices rose 3.5% in Q3 2024, from $1,234.56 to $1,277.77.",
        "Email me at someone@example.com or visit https://example.org/path?q=1&r=2#frag.",
        "C++ and C# are different languages; so are Java and JavaScript.",
        "x = a*b + c/d - e^f; if (x >= 10 && y <= 5) { return ~z | w; }",
        "The year 1999 was followed by 2000, 2001 and 2002.",
        "pi is approximately 3.14159265358979323846264338327950288419716939937510",
        "unbelievably, the antidisestablishmentarianism movement was supercalifragilisticexpialidocious.",
        "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word.",
        "tokenization tokenizer tokenizers tokenized retokenize detokenization",
        "Café, naïve, résumé, façade, jalapeño, über, Ångström, Øresund, Łódź, Dvořák.",
        "Crème brûlée à la française, s'il vous plaît.",
        "Der Überfluss an Äpfeln und Öl führt zu Ärger im Straßenverkehr.",
        "¿Dónde está la biblioteca? ¡Allí está!",
        "Tiếng Việt có rất nhiều dấu: ả, ã, ạ, ắ, ằ, ẳ, ẵ, ặ.",
        "Ça va? Oui, ça va très bien, merci.",
        "São Paulo, Bogotá, Zürich, Kraków, Reykjavík, İstanbul.",
        "ÀÁÂÃÄÅ àáâãäå ÈÉÊË èéêë ÌÍÎÏ ìíîï ÒÓÔÕÖ òóôõö ÙÚÛÜ ùúûü Ññ Çç",
        "Combining marks: e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 (decomposed on purpose).",
        "ﬁnancial ﬂow: ligatures ﬀ ﬃ ﬄ stay as they are.",
        "Greek: Καλημέρα κόσμε, ΣΊΣΥΦΟΣ ἀρετή ὁδός.",
        "Russian: Привет, мир! Съешь же ещё этих мягких французских булок.",
        "Ukrainian: Ґанок, їжак, єнот, ще.",
        "我爱自然语言处理。",
        "今天天气很好，我们去公园散步吧！",
        "北京是中华人民共和国的首都。",
        "机器学习和深度学习是人工智能的重要分支。",
        "这个模型可以把句子变成向量。",
        "繁體中文：電腦、網絡、語言模型。",
        "中文和English混合的句子，also with 数字123和标点！",
        "日本語の文章です。ひらがな、カタカナ、漢字が混ざっています。",
        "東京タワーは高さ333メートルです。",
        "한국어 문장입니다. 안녕하세요, 만나서 반갑습니다!",
        "서울은 대한민국의 수도입니다.",
        "العربية: مرحبا بالعالم، كيف حالك؟",
        "עברית: שלום עולם!",
        "हिन्दी: नमस्ते दुनिया, आप कैसे हैं?",
        "বাংলা ভাষা অনেক সুন্দর।",
        "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
        "Ελληνικά, Русский, 中文, 日本語, 한국어, العربية, हिन्दी in one line.",
        "Emoji: I love it 😍🔥💯!",
        "👍👍👍 great job 🎉🎉",
        "Family: 👨‍👩‍👧‍👦 and flags 🇫🇷 🇯🇵 🇺🇸",
        "Skin tones: 👋🏻 👋🏼 👋🏽 👋🏾 👋🏿",
        "Hearts ❤️ 💙 💚 💛 🧡 💜 🖤 🤍 🤎",
        "newer emoji 🥰 🫠 🫶 🥲 🦄 🧠",
        "Math symbols: ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ∂ ∇ ∈ ∉ ⊂ ⊃ ∀ ∃",
        "Arrows → ← ↑ ↓ ⇒ ⇔ and boxes ■ □ ▲ △",
        "Currency: € £ ¥ ₹ ₽ ₩ ₿ $ ¢",
        "!!!???...!!!",
        "...",
        "--- *** ### $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
        "Wait... what?! No way!!! Really???",
        "«Guillemets» „Anführungszeichen“ “curly quotes” ‘single’ 「括弧」 『二重』",
        "em—dash en–dash hyphen-minus figure‒dash ‐hyphen",
        "a.b.c.d.e.f.g",
        "one,two;three:four!five?six",
        "(parenthesised (nested (deeply)))",
        "The end.",
        "[MASK] is the capital of France.",
        "This sentence has [CLS] and [SEP] tokens typed in it.",
        "[UNK] [PAD] [MASK][MASK]",
        "lowercase [mask] is not a special token",
        "Tabs\tand\tspaces   and  double  spaces.",
        "Non\u00a0breaking\u00a0space and thin\u2009space and ideographic\u3000space.",
        "zero\u200bwidth\u200bspace and zero\u200cwidth\u200djoiners",
        "soft\u00adhyphen in hy\u00adphen\u00adation",
        "control \u0007 bell and \u001b escape characters",
        "replacement char \ufffd here",
        "private use \ue000\uf8ff chars",
        "  leading and trailing spaces  ",
        "a",
        "I",
        "?",
        "1",
        "URL-like: www.hetrun.org/docs/jobspec.md#embed",
        "snake_case_identifier and camelCaseIdentifier and kebab-case-identifier",
        "version 1.2.3-rc.4+build.567",
        "IPv6 2001:0db8:85a3::8a2e:0370:7334 and IPv4 192.168.0.1",
        "dates 2024-01-31, 31/01/2024, Jan. 31st, 2024",
        "A sentence with a verylongwordthatkeepsgoingandgoingwithoutanyspacesatallbutstaysunderthelimitofonehundredchars in it.",
        "x" * 100,
        "y" * 101,
        "over-long: " + "abc" * 40 + " and after",
        "ünïcödé" * 15,
        "中" * 120,
        "😀" * 50,
        "The patient was administered 5 mg/kg of acetaminophen q6h PRN.",
        "The defendant's motion for summary judgment is hereby DENIED.",
        "BREAKING: Markets tumble as investors weigh rate-hike fears.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "The mitochondria is the powerhouse of the cell.",
        "E = mc^2 relates mass and energy.",
        "Water boils at 100 °C (212 °F) at sea level.",
        "The GPU has 141 GB of HBM3e memory.",
        "MPI_Allreduce sums gradients across all ranks.",
        "OpenCL, CUDA, HIP, SYCL and oneAPI are programming models for accelerators.",
        "How do I reset my password?",
        "What is the weather like in Paris tomorrow?",
        "Where can I buy a train ticket to Berlin?",
        "Why is the sky blue?",
        "Which programming language should I learn first?",
        "Please cancel my subscription immediately.",
        "I would like to return this item and get a refund.",
        "My order hasn't arrived yet, can you check the status?",
        "Thank you so much for your help!",
        "This product is terrible and broke after one day.",
        "Absolutely fantastic service, highly recommended.",
        "Meh. It was okay, I guess.",
        "Not bad, not great.",
        "lol idk wbu? brb ttyl",
        "gonna wanna gotta kinda sorta",
        "It's raining cats and dogs.",
        "Break a leg!",
        "The early bird catches the worm.",
        "Actions speak louder than words.",
        "A picture is worth a thousand words.",
    ]
    # Programmatic variants, fixed seed: casing, punctuation runs, mixed-script pairs.
    rng = random.Random(16)
    words = ("model", "vector", "embedding", "search", "query", "document", "kernel", "device",
             "rank", "node", "batch", "token", "学习", "模型", "数据", "café", "naïve", "Zürich",
             "😀", "🚀", "!!", "?!", "...", "Привет", "こんにちは", "안녕", "مرحبا", "#1", "$5",
             "e-mail", "co-operate", "don't", "O'Brien", "x86_64", "3.14")
    while len(s) < 230:
        n = rng.randint(3, 14)
        w = [rng.choice(words) for _ in range(n)]
        if rng.random() < 0.3:
            w = [x.upper() for x in w]
        s.append(" ".join(w) + rng.choice([".", "!", "?", "", "!!!", "..."]))
    # Long inputs: truncated at 256 tokens.
    s.append(" ".join(["The cluster scheduler assigns ranks to GPUs near their cores."] * 30))
    s.append("数据中心的加速器" * 60)
    s.append(" ".join(f"word{i}" for i in range(300)))
    for x in s:
        assert "\n" not in x and "\r" not in x, x
    return s


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/hetrun/models/all-MiniLM-L6-v2")
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    sents = sentences()
    max_len = json.load(open(os.path.join(model_dir, "sentence_bert_config.json")))["max_seq_length"]
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    ids = [e.ids for e in tok.encode_batch(sents)]

    model = SentenceTransformer(model_dir, device="cpu")
    assert model.max_seq_length == max_len
    # sentence-transformers' own tokenizer (transformers' fast BertTokenizer) must agree.
    for i, x in enumerate(sents):
        st_ids = model.tokenize([x])["input_ids"][0].tolist()
        assert st_ids == ids[i], (i, x, st_ids, ids[i])
    emb = model.encode(sents, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    emb = emb.astype(np.float32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    with open(os.path.join(HERE, "sentences.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(sents) + "\n")
    with open(os.path.join(HERE, "ids.txt"), "w") as f:
        f.write("\n".join(" ".join(map(str, x)) for x in ids) + "\n")
    np.save(os.path.join(HERE, "embeddings_f32.npy"), emb)
    print(f"{len(sents)} sentences, {sum(map(len, ids))} tokens, "
          f"{sum(len(x) == max_len for x in ids)} truncated at {max_len}, embeddings {emb.shape}")


if __name__ == "__main__":
    main()
