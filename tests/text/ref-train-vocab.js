#!/usr/bin/env node
// Reference vocabulary training: Hugging Face's Rust trainers through the npm
// `tokenizers` binding (tests/reference/tokenizers). That binding exposes
// only Tokenizer.train(files), which runs the model's default trainer:
// vocab_size 30000, min_frequency 0, no special tokens, no initial alphabet,
// no alphabet limit (WordPieceTrainer adds the "##" prefix). compare-vocab.py
// gives stsim's trainer the same settings.
//
//   ref-train-vocab.js wordpiece|wordpiece-cased|bpe OUT.json FILE...
//
// wordpiece: BertNormalizer (clean text, CJK, strip accents + lowercase) and
// BertPreTokenizer, as bert-base-uncased; wordpiece-cased: the same without
// accent stripping and lowercasing; bpe: ByteLevel pre-tokenizer without a
// prefix space, as roberta-base. OUT.json: the trained tokenizer.json.
'use strict';
const path = require('path');
const tk = require(path.join(__dirname, '..', 'reference', 'tokenizers', 'node_modules', 'tokenizers'));

const [kind, out, ...files] = process.argv.slice(2);
let t;
if (kind === 'wordpiece' || kind === 'wordpiece-cased') {
  const lower = kind === 'wordpiece';
  t = new tk.Tokenizer(tk.WordPiece.empty());
  t.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lower, lowercase: lower }));
  t.setPreTokenizer(tk.bertPreTokenizer());
} else if (kind === 'bpe') {
  t = new tk.Tokenizer(tk.BPE.empty());
  t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
} else {
  process.stderr.write(`ref-train-vocab.js: unknown kind '${kind}' (wordpiece, wordpiece-cased or bpe)\n`);
  process.exit(2);
}
t.train(files);
t.save(out, false);
