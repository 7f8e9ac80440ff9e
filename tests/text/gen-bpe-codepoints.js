#!/usr/bin/env node
// Writes lines that put every Unicode scalar value c (except U+0000 and '\n',
// which cannot sit inside a line) into "x c 1 c . c c <mask>" (no spaces):
// the pieces differ for each class of c (\p{L} joins x, \p{N} joins 1,
// other joins ., white space splits off and is eaten by <mask>'s lstrip).
// Tokenising these with stsim and with the reference compares the
// \p{L} / \p{N} / \s tables on all 1,112,062 code points.
'use strict';
const perLine = 32;
const out = [];
let line = [];
for (let cp = 1; cp <= 0x10ffff; cp++) {
  if (cp === 0x0a || (cp >= 0xd800 && cp <= 0xdfff)) continue;
  const c = String.fromCodePoint(cp);
  line.push(`x${c}1${c}.${c}${c}<mask>`);
  if (line.length === perLine) {
    out.push(line.join(' '));
    line = [];
  }
}
if (line.length) out.push(line.join(' '));
process.stdout.write(out.join('\n') + '\n');
