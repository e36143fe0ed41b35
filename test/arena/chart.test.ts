import { describe, expect, it } from 'vitest';
import { leaderboardPng, leaderboardSvg } from '../../src/arena/chart.js';
import { computeLeaderboard } from '../../src/arena/leaderboard.js';
import { simulateVotes, spreadRatings } from '../helpers/arena.js';

const options = { category: null, minVotes: 10, bootstrapRounds: 50, seed: 0, anchor: { rating: 1000 } };

const pngSize = (png: Buffer) => [png.readUInt32BE(16), png.readUInt32BE(20)];

describe('leaderboard chart', () => {
  it('draws one row per shown adapter, with its interval, and says what is hidden', async () => {
    const votes = [
      ...simulateVotes({ ratings: spreadRatings(12, 500), votes: 2000, seed: 1 }),
      { a: 'rare', b: 'adapter-00', choice: 'A' as const, at: 0, category: null },
    ];
    const { board } = await computeLeaderboard(votes, options);
    const svg = leaderboardSvg(board);
    expect(svg.match(/<circle /g)).toHaveLength(12);
    expect(svg).toContain('1 adapter with fewer than 10 votes not shown');
    expect(svg).toContain('95% intervals from 50 bootstrap rounds');
    const png = await leaderboardPng(board);
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(pngSize(png)).toEqual([960, 78 + 12 * 26 + 74]);
  });

  it('escapes text and draws an empty board', async () => {
    const { board } = await computeLeaderboard([], { ...options, category: 'a<b&c' });
    const svg = leaderboardSvg(board);
    expect(svg).toContain('a&lt;b&amp;c');
    expect(svg).toContain('No adapter has enough counted votes yet.');
    expect(pngSize(await leaderboardPng(board))[0]).toBe(960);
  });
});
