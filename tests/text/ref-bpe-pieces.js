#!/usr/bin/env node
// Reference pre-tokenisation for byte-level BPE: Hugging Face's ByteLevel
// pre-tokenizer (add_prefix_space false, GPT-2 regex) on each stdin line
// (split on '\n' only). Output per line: the pieces in the byte-level
// alphabet, separated by single spaces (a space never occurs inside one).
'use strict';
const path = require('path');
const fs = require('fs');
const tk = require(path.join(__dirname, '..', 'reference', 'tokenizers', 'node_modules', 'tokenizers'));

const pre = tk.byteLevelPreTokenizer(false, true);
const bytes = fs.readFileSync(0);
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const out = [];
let start = 0;
while (start < bytes.length) {
  let nl = bytes.indexOf(0x0a, start);
  if (nl < 0) nl = bytes.length;
  const line = dec.decode(bytes.subarray(start, nl));
  out.push(pre.preTokenizeString(line).map((p) => p[0]).join(' '));
  start = nl + 1;
}
process.stdout.write(out.length ? out.join('\n') + '\n' : '');
