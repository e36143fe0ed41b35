// /v1/battles and /v1/leaderboard: anonymous A/B battles between adapters, votes, and the leaderboard as JSON or
// as a PNG chart. The zod schemas here validate requests and describe every answer in /openapi.json.
import type { Router } from 'express';
import { z } from 'zod';
import type { Arena } from '../../arena/arena.js';
import {
  CHOICES,
  type BattleView,
  type GeneratedAnswer,
  type Leaderboard,
  type SamplingSettings,
  type VoteResult,
} from '../../arena/types.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';

const adapterName = z.string().min(1).max(200);
const category = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9 _-]{0,39}$/, 'a category is 1–40 letters, digits, spaces, "_" or "-", e.g. "code"');
const voter = z.string().trim().min(1, 'voter must not be empty').max(200);
const choice = z.enum(CHOICES).meta({ description: 'A or B: that answer is better; tie; bad: both are bad (counts as a tie)' });

export const BattleRequestSchema = z
  .object({
    prompt: z.string().trim().min(1, 'prompt must not be empty').max(8000),
    a: adapterName.optional().meta({ description: 'an adapter to put in the battle; drawn at random when absent' }),
    b: adapterName.optional().meta({ description: 'the other adapter; drawn at random when absent' }),
    category: category.optional().meta({ description: 'the skill the prompt tests: each category has its own leaderboard' }),
    sampling: z
      .object({
        temperature: z.number().min(0).max(5).optional(),
        topP: z.number().gt(0).max(1).optional(),
        maxTokens: z.number().int().min(1).max(8192).optional(),
        seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
      })
      .strict()
      .optional()
      .meta({ description: 'the same settings and seed are used for both answers; defaults from the arena config, seed drawn' }),
  })
  .strict();

const VoteRequestSchema = z.object({ voter, choice }).strict();

const BattleParams = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{12}$/, 'a battle id is 12 characters of A–Z, a–z, 0–9, "_" and "-"'),
});

const sides = <T extends z.ZodType>(schema: T) => z.object({ A: schema, B: schema });
const answerSchema: z.ZodType<GeneratedAnswer> = z.object({ text: z.string(), finishReason: z.string() });
const samplingSchema: z.ZodType<SamplingSettings> = z.object({
  temperature: z.number(),
  topP: z.number(),
  maxTokens: z.number(),
  seed: z.number(),
});

export const BattleViewSchema: z.ZodType<BattleView> = z
  .object({
    id: z.string(),
    prompt: z.string(),
    category: z.string().nullable(),
    answers: sides(answerSchema),
    sampling: samplingSchema,
    status: z.enum(['open', 'closed']),
    createdAt: z.string(),
    closesAt: z.string(),
    closedAt: z.string().nullable(),
    counted: z.boolean().meta({ description: 'false when an answer could reveal an adapter: votes are taken but not counted' }),
    flag: z.object({ reason: z.literal('identity'), terms: z.array(z.string()) }).nullable(),
    votes: z.number(),
    tally: z.object({ A: z.number(), B: z.number(), tie: z.number(), bad: z.number() }).nullable().meta({
      description: 'votes per choice, once the battle is closed',
    }),
    models: sides(z.string()).nullable().meta({ description: 'which adapter answered on which side: shown once closed or to a voter who voted' }),
    yourVote: choice.nullable(),
  })
  .meta({ id: 'Battle' });

const VoteResultSchema: z.ZodType<VoteResult> = z
  .object({
    choice,
    previous: choice.nullable().meta({ description: "the voter's earlier vote on this battle, now replaced" }),
    counted: z.boolean(),
    battle: BattleViewSchema,
  })
  .meta({ id: 'VoteResult' });

const entrySchema = z.object({
  rank: z.number().meta({ description: '1 + the number of adapters whose whole interval lies above this one' }),
  name: z.string(),
  rating: z.number().meta({ description: 'Bradley–Terry rating (400 points ≈ 10:1 odds), anchored' }),
  lower: z.number().meta({ description: 'lower end of the 95% bootstrap interval' }),
  upper: z.number(),
  votes: z.number(),
  wins: z.number(),
  losses: z.number(),
  ties: z.number(),
  bothBad: z.number(),
  winRate: z.number().meta({ description: '(wins + ½ ties + ½ both bad) / votes' }),
  elo: z.number().meta({ description: 'online Elo (K = 4) over the votes in time order; secondary' }),
});

export const LeaderboardSchema: z.ZodType<Leaderboard> = z
  .object({
    category: z.string().nullable(),
    categories: z.array(z.string()),
    votes: z.number(),
    entries: z.array(entrySchema),
    hidden: z.array(z.object({ name: z.string(), votes: z.number() })).meta({ description: 'adapters under the vote threshold' }),
    winMatrix: z.object({
      adapters: z.array(z.string()),
      score: z.array(z.array(z.number().nullable())).meta({ description: "score[i][j]: i's share of points against j" }),
      votes: z.array(z.array(z.number())),
    }),
    method: z.object({
      model: z.literal('bradley-terry'),
      scale: z.number(),
      base: z.number(),
      anchor: z.object({ adapter: z.string().nullable(), rating: z.number() }),
      priorSd: z.number(),
      bootstrapRounds: z.number(),
      seed: z.number(),
      interval: z.number(),
      minVotes: z.number(),
      elo: z.object({ k: z.number(), initial: z.number() }),
    }),
    computedAt: z.string(),
  })
  .meta({ id: 'Leaderboard' });

const LeaderboardQuery = z.object({
  category: category.optional().meta({ description: 'the board of one category; all votes when absent' }),
  minVotes: z.coerce.number().int().min(0).optional().meta({ description: 'hide adapters with fewer votes (default from config)' }),
});

export function arenaRoutes(deps: RouteDeps & { arena: Arena }): Router {
  const { arena } = deps;
  const r = new ApiRouter(deps.openapi);
  const tags = ['arena'];

  r.post(
    '/v1/battles',
    {
      summary: 'start an anonymous battle: two adapters answer one prompt, labelled A and B',
      description:
        'Both answers are generated in one batch with the same sampling settings and seed; a coin flip decides which adapter ' +
        'is A. Adapters not named are drawn at random, favouring those with few votes. The names stay hidden until the ' +
        'battle closes or the asker has voted.',
      tags,
      request: { body: BattleRequestSchema },
      responses: { 201: { description: 'the battle', schema: BattleViewSchema } },
    },
    async ({ body }, _req, res) => {
      // a client that goes away stops the generation
      const controller = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) controller.abort();
      });
      const battle = await arena.createBattle(body, controller.signal);
      res.status(201).location(`/v1/battles/${battle.id}`).json(battle);
    },
  );

  r.get(
    '/v1/battles/:id',
    {
      summary: 'a battle; with ?voter= that voter\'s vote, and the names if they voted',
      tags,
      request: { params: BattleParams, query: z.object({ voter: voter.optional() }) },
      responses: { 200: { description: 'the battle', schema: BattleViewSchema } },
    },
    ({ params, query }) => arena.getBattle(params.id, query.voter),
  );

  r.post(
    '/v1/battles/:id/votes',
    {
      summary: "vote on an open battle (one vote per voter; voting again replaces it); the answer reveals the names to the voter",
      description: '409 when the battle is closed; 403 for an adapter owner when the arena excludes owners.',
      tags,
      request: { params: BattleParams, body: VoteRequestSchema },
      responses: { 200: { description: 'the vote and the battle as the voter may now see it', schema: VoteResultSchema } },
    },
    ({ params, body }) => arena.vote(params.id, body.voter, body.choice),
  );

  r.post(
    '/v1/battles/:id/close',
    {
      summary: 'close a battle now: no more votes, names and tally shown to all',
      tags,
      request: { params: BattleParams },
      responses: { 200: { description: 'the closed battle', schema: BattleViewSchema } },
    },
    ({ params }) => arena.closeBattle(params.id),
  );

  r.get(
    '/v1/leaderboard',
    {
      summary: 'ratings with 95% intervals, ranks, votes, win rates, online Elo and the pairwise win matrix',
      tags,
      request: { query: LeaderboardQuery },
      responses: { 200: { description: 'the leaderboard', schema: LeaderboardSchema } },
    },
    ({ query }) => arena.leaderboard(query),
  );

  r.get(
    '/v1/leaderboard.png',
    {
      summary: 'the leaderboard as a PNG chart: ratings with their interval bars',
      tags,
      request: { query: LeaderboardQuery },
      responses: { 200: { description: 'image/png', contentType: 'image/png', schema: z.string().meta({ format: 'binary' }) } },
    },
    async ({ query }, _req, res) => {
      const png = await arena.leaderboardPng(query);
      res.type('png').setHeader('Cache-Control', 'no-cache').send(png);
    },
  );

  return r.router;
}
