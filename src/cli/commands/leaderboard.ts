// `loraforge leaderboard`: the arena's ratings from a running API, as a table (or JSON), and the chart as a PNG.
import type { Command } from 'commander';
import type { Leaderboard } from '../../arena/types.js';
import { InvalidInputError } from '../../errors.js';
import { writeFileAtomic } from '../../formats/atomic.js';

interface LeaderboardOptions {
  category?: string;
  minVotes?: number;
  png?: string;
  json?: boolean;
  server?: string;
  token?: string;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`--min-votes must be a whole number, not "${value}"`);
  return n;
}

export function formatLeaderboard(board: Leaderboard): string {
  const { method } = board;
  const anchor = method.anchor.adapter ? `${method.anchor.adapter} = ${method.anchor.rating}` : `mean = ${method.anchor.rating}`;
  const intervals = method.bootstrapRounds > 0 ? `95% intervals from ${method.bootstrapRounds} bootstrap rounds` : 'no intervals';
  const lines = [
    `Arena leaderboard (${board.category ?? 'all categories'}) · ${board.votes} votes · Bradley–Terry, ${intervals} · ${anchor}`,
  ];
  if (board.entries.length === 0) {
    lines.push(`no adapter has ${method.minVotes} or more counted votes yet`);
  } else {
    const width = Math.max(7, ...board.entries.map((e) => e.name.length));
    lines.push(`rank  ${'adapter'.padEnd(width)}  rating  95% interval   votes  win rate   elo`);
    for (const e of board.entries) {
      const interval = `${Math.round(e.lower)} – ${Math.round(e.upper)}`;
      lines.push(
        `${String(e.rank).padStart(4)}  ${e.name.padEnd(width)}  ${String(Math.round(e.rating)).padStart(6)}  ${interval.padEnd(12)}` +
          `  ${String(e.votes).padStart(5)}  ${`${(100 * e.winRate).toFixed(1)}%`.padStart(8)}  ${String(Math.round(e.elo)).padStart(4)}`,
      );
    }
  }
  if (board.hidden.length > 0) {
    lines.push(`hidden (fewer than ${method.minVotes} votes): ${board.hidden.map((h) => `${h.name} (${h.votes})`).join(', ')}`);
  }
  if (board.categories.length > 0) lines.push(`categories: ${board.categories.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

export function leaderboardCommand(program: Command): void {
  program
    .command('leaderboard')
    .description("the arena's ratings with 95% intervals, from a running API")
    .option('--category <name>', "one category's board (default: every vote)")
    .option('--min-votes <n>', 'hide adapters with fewer votes (default: the server\'s arena.minVotes)', count)
    .option('--png <file>', 'also write the chart to this PNG file')
    .option('--json', 'print the leaderboard as JSON')
    .option('--server <url>', 'the API (default: LORAFORGE_API_URL)')
    .option('--token <token>', 'bearer token (default: LORAFORGE_API_TOKEN)')
    .action(async (opts: LeaderboardOptions) => {
      const [{ loadConfig }, { LoraforgeClient }] = await Promise.all([import('../../config/index.js'), import('../../client/index.js')]);
      const config = loadConfig();
      const client = new LoraforgeClient({ baseUrl: opts.server ?? config.bot.apiUrl, token: opts.token ?? config.server.authToken });
      const query = { category: opts.category, minVotes: opts.minVotes };
      const board = await client.arena.leaderboard(query);
      process.stdout.write(opts.json ? `${JSON.stringify(board, null, 2)}\n` : formatLeaderboard(board));
      if (opts.png) {
        await writeFileAtomic(opts.png, await client.arena.leaderboardPng(query));
        if (!opts.json) process.stdout.write(`chart written to ${opts.png}\n`);
      }
    });
}
