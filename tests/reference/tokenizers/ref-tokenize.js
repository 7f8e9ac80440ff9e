#!/usr/bin/env node
// Independent reference ids for stsim's tokenizer tests: Hugging Face's Rust
// `tokenizers` (through its Node binding) assembled the way transformers'
// BertTokenizerFast (bert-base-uncased) and RobertaTokenizerFast (roberta-base)
// assemble it. Input and output match `stsim-tokenize`:
//
//   node ref-tokenize.js (--wordpiece vocab.txt [--cased] | --bpe vocab.json merges.txt) [--max-len N]
//
// stdin is UTF-8, split on '\n' only (everything else, '\r' included, stays in
// the line; a final line without '\n' counts). One output line per input line:
// the ids, special tokens included, separated by single spaces. Invalid UTF-8
// is an error naming the line (exit 1); usage errors exit 2.
'use strict';

const path = require('path');
let tk;
try {
  tk = require(path.join(__dirname, 'node_modules', 'tokenizers'));
} catch (e) {
  process.stderr.write('ref-tokenize: cannot load the npm package "tokenizers" (run `npm install` in ' +
                       __dirname + '): ' + e.message + '\n');
  process.exit(3);
}

function usage(msg) {
  process.stderr.write('ref-tokenize: ' + msg + '\n' +
    'usage: node ref-tokenize.js (--wordpiece vocab.txt [--cased] | --bpe vocab.json merges.txt) [--max-len N]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { kind: null, maxLen: 0, lowercase: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--wordpiece') {
      if (i + 1 >= argv.length) usage('--wordpiece needs vocab.txt');
      a.kind = 'wordpiece'; a.vocab = argv[++i];
    } else if (arg === '--bpe') {
      if (i + 2 >= argv.length) usage('--bpe needs vocab.json and merges.txt');
      a.kind = 'bpe'; a.vocab = argv[++i]; a.merges = argv[++i];
    } else if (arg === '--max-len') {
      if (i + 1 >= argv.length) usage('--max-len needs a number');
      const s = argv[++i];
      if (!/^[0-9]+$/.test(s) || Number(s) < 2) usage('--max-len must be an integer >= 2, got "' + s + '"');
      a.maxLen = Number(s);
    } else if (arg === '--cased') {
      a.lowercase = false;
    } else {
      usage('unknown argument "' + arg + '"');
    }
  }
  if (!a.kind) usage('one of --wordpiece or --bpe is required');
  return a;
}

async function buildWordPiece(a) {
  // BertTokenizerFast(bert-base-uncased) == tokenizer.json of that model:
  // BertNormalizer(clean_text, handle_chinese_chars, strip_accents = None -> follows
  // lowercase, lowercase), BertPreTokenizer, WordPiece([UNK], "##", 100),
  // BertProcessing([SEP], [CLS]), the five special tokens as added tokens
  // (special, not normalized, so "[MASK]" typed in the text is the mask id).
  const model = await tk.WordPiece.fromFile(a.vocab, {
    unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100,
  });
  const t = new tk.Tokenizer(model);
  t.setNormalizer(tk.bertNormalizer({
    cleanText: true, handleChineseChars: true, stripAccents: a.lowercase, lowercase: a.lowercase,
  }));
  t.setPreTokenizer(tk.bertPreTokenizer());
  const id = (s) => {
    const v = t.tokenToId(s);
    if (v === null || v === undefined) usage(a.vocab + ': special token ' + s + ' is missing');
    return v;
  };
  t.setPostProcessor(tk.bertProcessing(['[SEP]', id('[SEP]')], ['[CLS]', id('[CLS]')]));
  t.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  return t;
}

async function buildBpe(a) {
  // RobertaTokenizerFast(roberta-base): no normalizer, ByteLevel pre-tokenizer
  // (add_prefix_space false, regex), BPE from vocab.json + merges.txt,
  // RobertaProcessing(</s>, <s>), special tokens as added tokens; <mask> strips
  // the whitespace on its left (AddedToken(lstrip=True)).
  const model = await tk.BPE.fromFile(a.vocab, a.merges, {});
  const t = new tk.Tokenizer(model);
  t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
  t.setDecoder(tk.bpeDecoder());
  const id = (s) => {
    const v = t.tokenToId(s);
    if (v === null || v === undefined) usage(a.vocab + ': special token ' + s + ' is missing');
    return v;
  };
  t.setPostProcessor(tk.robertaProcessing(['</s>', id('</s>')], ['<s>', id('<s>')], true, false));
  t.addSpecialTokens(['<s>', '<pad>', '</s>', '<unk>']);
  t.addAddedTokens([new tk.AddedToken('<mask>', true, { leftStrip: true, rightStrip: false, normalized: false })]);
  return t;
}

function readStdin() {
  const fs = require('fs');
  const chunks = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

function splitLines(bytes) {
  const lines = [];
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, start);
    if (nl < 0) break;
    lines.push(bytes.subarray(start, nl));
    start = nl + 1;
  }
  if (start < bytes.length) lines.push(bytes.subarray(start));
  const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return lines.map((b, i) => {
    try {
      return dec.decode(b);
    } catch (e) {
      process.stderr.write('ref-tokenize: <stdin>:' + (i + 1) + ': invalid UTF-8\n');
      process.exit(1);
    }
  });
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const t = a.kind === 'wordpiece' ? await buildWordPiece(a) : await buildBpe(a);
  if (a.maxLen > 0) t.setTruncation(a.maxLen);
  const lines = splitLines(readStdin());
  const out = [];
  const chunk = 2048;
  for (let i = 0; i < lines.length; i += chunk) {
    const encs = await t.encodeBatch(lines.slice(i, i + chunk));
    for (const e of encs) out.push(e.getIds().join(' '));
  }
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
}

main().catch((e) => {
  process.stderr.write('ref-tokenize: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
