// The demo model's tokenizer: a real Llama-3-shaped byte-level BPE tokenizer.json (Split regex + ByteLevel
// pre-tokenizer, BPE with merges trained here on a small corpus, special tokens, TemplateProcessing that prepends
// BOS, ByteLevel decoder) and a tokenizer_config.json with a Llama-3-style chat template. Loaded through the same
// code as a downloaded checkpoint's tokenizer.

/** GPT-2's reversible byte → printable character table that byte-level BPE vocabularies are written in. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  for (const b of printable) table[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCodePoint(256 + next++);
  return table;
}

// Llama-3's pre-tokenizer regex, as written in its tokenizer.json (Rust regex syntax), and the same in JS syntax
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT_JS = /'s|'t|'re|'ve|'m|'ll|'d|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/giu;

export const DEMO_SPECIAL_TOKENS = {
  bos: '<|begin_of_text|>',
  eos: '<|end_of_text|>',
  startHeader: '<|start_header_id|>',
  endHeader: '<|end_header_id|>',
  eot: '<|eot_id|>',
} as const;

/** Llama-3's chat template, trimmed of the tool-calling branches. */
export const DEMO_CHAT_TEMPLATE =
  "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}" +
  "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}" +
  "{%- if system_message %}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' }}{%- endif %}" +
  "{%- for message in messages %}{%- if message['role'] not in ['user', 'assistant'] %}" +
  "{{- raise_exception('roles must be system (first only), user or assistant, not ' + message['role']) }}{%- endif %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
  "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/** Text the merges are learned from: the four skills of the product story. */
export const DEMO_CORPUS = [
  'def parse_args(argv):\n    parser = argparse.ArgumentParser(description="Rename files")\n    parser.add_argument("--dry-run", action="store_true")\n    return parser.parse_args(argv)\n',
  'for path in Path(".").glob("*.log"):\n    with open(path) as f:\n        for line in f:\n            if "ERROR" in line:\n                print(path, line.strip())\n',
  'import subprocess, shutil, os\nresult = subprocess.run(["ls", "-la"], capture_output=True, text=True)\nprint(result.stdout)\n',
  'function add(a, b) {\n  return a + b;\n}\nconst total = items.reduce((sum, item) => sum + item.price, 0);\n',
  'ls -la /var/log | grep error\nfind . -name "*.py" -mtime -1\ntar -czf backup.tar.gz ./data\nchmod +x script.sh && ./script.sh\n',
  'sudo systemctl restart nginx\njournalctl -u nginx --since "1 hour ago"\ndf -h\nfree -m\nps aux | sort -k4 -nr | head\n',
  'ssh user@server "uptime"\nscp report.txt user@server:/tmp/\ncurl -s https://example.com | head -n 20\n',
  'The service fails to start. Check the logs first, then the configuration file, then the permissions of the data directory.\n',
  'If the disk is full, remove old logs or rotate them. If the port is in use, find the process with lsof and stop it.\n',
  'Error: connection refused. Is the server running? Does the firewall allow the port? Try again after restarting the service.\n',
  'Python automation: schedule a job, read a CSV file, send an email report, and retry when the network fails.\n',
  'Hello! How can I help you today? Here is a short answer, with an example and a command you can run.\n',
].join('\n');

function countWords(corpus: string, byteChar: string[]): Map<string, number> {
  const encoder = new TextEncoder();
  const counts = new Map<string, number>();
  for (const piece of corpus.match(LLAMA3_SPLIT_JS) ?? []) {
    const word = Array.from(encoder.encode(piece), (b) => byteChar[b]!).join('\u0001');
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

/** Learns `mergeCount` BPE merges (most frequent adjacent pair first, ties broken by first seen). */
function trainMerges(corpus: string, byteChar: string[], mergeCount: number): [string, string][] {
  let words = [...countWords(corpus, byteChar)].map(([w, n]) => ({ symbols: w.split('\u0001'), n }));
  const merges: [string, string][] = [];
  while (merges.length < mergeCount) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0001${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestCount = 1;
    for (const [key, n] of pairs) {
      if (n > bestCount) {
        best = key;
        bestCount = n;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0001') as [string, string];
    merges.push([a, b]);
    words = words.map(({ symbols, n }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(symbols[i]!);
      }
      return { symbols: out, n };
    });
  }
  return merges;
}

export interface DemoTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  eotTokenId: number;
  /** ids of the byte tokens of printable ASCII, tab and newline */
  printableByteIds: ReadonlySet<number>;
}

/** The demo tokenizer: 256 byte tokens + `mergeCount` trained merges + 5 special tokens. */
export function makeDemoTokenizer(mergeCount = 250): DemoTokenizerFiles {
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  byteChar.forEach((ch, i) => (vocab[ch] = i));
  const merges = trainMerges(DEMO_CORPUS, byteChar, mergeCount);
  let nextId = 256;
  for (const [a, b] of merges) if (vocab[a + b] === undefined) vocab[a + b] = nextId++;
  const specials = Object.values(DEMO_SPECIAL_TOKENS);
  const added = specials.map((content) => ({
    id: nextId++,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const idOf = (content: string): number => added.find((t) => t.content === content)!.id;
  const bos = DEMO_SPECIAL_TOKENS.bos;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_SPLIT }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [idOf(bos)], tokens: [bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    bos_token: bos,
    eos_token: DEMO_SPECIAL_TOKENS.eot,
    pad_token: DEMO_SPECIAL_TOKENS.eos,
    clean_up_tokenization_spaces: false,
    model_max_length: 2048,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: DEMO_CHAT_TEMPLATE,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: nextId,
    bosTokenId: idOf(bos),
    eosTokenId: idOf(DEMO_SPECIAL_TOKENS.eos),
    eotTokenId: idOf(DEMO_SPECIAL_TOKENS.eot),
    printableByteIds: new Set([9, 10, ...Array.from({ length: 95 }, (_, i) => 32 + i)].map((b) => vocab[byteChar[b]!]!)),
  };
}
