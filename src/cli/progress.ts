// Progress of long CLI work on stderr: a redrawn bar on a terminal, plain lines otherwise (one per phase and per
// 10%), so logs and CI output stay readable. stdout is left for the command's result.
export interface ProgressUpdate {
  phase: string;
  done: number;
  total: number;
  detail?: string;
}

export interface ProgressPrinter {
  update(p: ProgressUpdate): void;
  /** clears the bar */
  done(): void;
}

export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): ProgressPrinter {
  const tty = stream.isTTY === true;
  let lastPhase = '';
  let lastDecile = -1;
  let lastDraw = 0;
  return {
    update(p) {
      const frac = p.total > 0 ? p.done / p.total : 0;
      const pct = Math.floor(100 * frac);
      if (tty) {
        const now = performance.now();
        if (now - lastDraw < 50 && p.done !== p.total && p.phase === lastPhase) return;
        lastDraw = now;
        const width = 24;
        const filled = Math.round(width * frac);
        const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
        const line = `${p.phase.padEnd(6)} ${bar} ${p.done}/${p.total} ${p.detail ?? ''}`;
        stream.write(`\r\x1b[K${line.slice(0, (stream.columns ?? 100) - 1)}`);
      } else if (p.phase !== lastPhase || Math.floor(pct / 10) !== lastDecile) {
        stream.write(`${p.phase} ${p.done}/${p.total} (${pct}%)${p.detail ? ` ${p.detail}` : ''}\n`);
        lastDecile = Math.floor(pct / 10);
      }
      lastPhase = p.phase;
    },
    done() {
      if (tty) stream.write('\r\x1b[K');
    },
  };
}

/** Left-aligned text columns, right-aligned numbers. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const isNum = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.,e%-]*$|^–$/.test(r[i] ?? '')));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (isNum[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '─'.repeat(w))), ...rows.map(fmt)].join('\n') + '\n';
}
