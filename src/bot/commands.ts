// The slash commands, defined once: `loraforge register-commands` deploys exactly these, and the router dispatches
// by the same names. One top-level command per domain with subcommands; `/merge` has one subcommand per method so
// each shows only the options that method takes.
import {
  InteractionContextType,
  SlashCommandBuilder,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
  type SlashCommandStringOption,
  type SlashCommandSubcommandBuilder,
} from 'discord.js';
import { DEFAULT_BLEND_MARGIN, DEFAULT_ROUTING_MARGIN } from '../inference/engine/routing.js';
import { DEFAULT_BUDGET } from '../eval/tune-start.js';
import type { MergeMethod } from './api-types.js';

/**
 * Each method's subcommand: its description and the optional knobs it shows (weights and adapters are common to
 * all). Keyed by the API's method type (the merge engine's METHODS table), so a method added there does not
 * compile here until it has a row; test/bot/render.test.ts checks the knobs against the engine's traits.
 */
const METHOD_COMMANDS: Record<MergeMethod, { help: string; density: boolean; rank: boolean; seed: boolean }> = {
  linear: { help: 'Weighted sum of the adapters’ updates (exact)', density: false, rank: false, seed: false },
  cat: { help: 'Concatenate the adapters (exact sum, rank adds up)', density: false, rank: false, seed: false },
  svd: { help: 'Weighted sum truncated to a rank by SVD', density: false, rank: true, seed: false },
  ties: { help: 'TIES: trim small values, elect signs, average agreeing ones', density: true, rank: true, seed: false },
  dare_ties: { help: 'DARE (random drop and rescale) then TIES sign election', density: true, rank: true, seed: true },
  dare_linear: { help: 'DARE (random drop and rescale) then a weighted sum', density: true, rank: true, seed: true },
  magnitude_prune: { help: 'Keep the largest values of each update, then sum', density: true, rank: true, seed: false },
};

/** The `/merge` subcommands, in the order Discord lists them. */
export const MERGE_METHODS = Object.keys(METHOD_COMMANDS) as MergeMethod[];

function mergeMethodSubcommand(method: MergeMethod) {
  return (s: SlashCommandSubcommandBuilder) => {
    const knobs = METHOD_COMMANDS[method];
    s.setName(method)
      .setDescription(knobs.help)
      .addStringOption((o) => o.setName('weights').setDescription('One weight per adapter, in order, e.g. 1,1,1,1').setRequired(true).setMaxLength(400));
    if (knobs.density) {
      s.addNumberOption((o) => o.setName('density').setDescription('Fraction of each update to keep, in (0, 1] (default 0.2)').setMinValue(0).setMaxValue(1));
    }
    s.addStringOption((o) =>
      o.setName('adapters').setDescription('Adapters to merge, comma separated (default: all registered, oldest first)').setAutocomplete(true).setMaxLength(1000),
    );
    if (knobs.rank) s.addIntegerOption((o) => o.setName('rank').setDescription('Rank of the merged adapter (default: the inputs’ total, capped)').setMinValue(1).setMaxValue(1024));
    if (knobs.seed) s.addIntegerOption((o) => o.setName('seed').setDescription('Seed of the random drop (same seed, same merge)').setMinValue(0).setMaxValue(2 ** 31 - 1));
    s.addStringOption((o) => o.setName('name').setDescription('Register the result under this name (default: method and recipe hash)').setMaxLength(64));
    s.addStringOption((o) =>
      o
        .setName('space')
        .setDescription('delta: exact math on each update (default); factors: PEFT’s add_weighted_adapter')
        .addChoices({ name: 'delta (exact)', value: 'delta' }, { name: 'factors (as PEFT)', value: 'factors' }),
    );
    s.addStringOption((o) =>
      o
        .setName('layer_weights')
        .setDescription('Factors per layer group, a row per adapter: 1,0.5,1;0.8,1,1 (early, middle, late)')
        .setMaxLength(1000),
    );
    return s;
  };
}

const adapterName = (description: string) => (o: SlashCommandStringOption) =>
  o.setName('name').setDescription(description).setRequired(true).setAutocomplete(true).setMaxLength(64);

function adapterCommand() {
  return new SlashCommandBuilder()
    .setName('adapter')
    .setDescription('Register and inspect LoRA adapters')
    .setContexts(InteractionContextType.Guild)
    .addSubcommand((s) =>
      s
        .setName('register')
        .setDescription('Register a PEFT LoRA adapter from a server path or an uploaded .zip / .tar.gz')
        .addStringOption((o) => o.setName('name').setDescription('A slug, e.g. linux-commands').setRequired(true).setMaxLength(64))
        .addStringOption((o) => o.setName('path').setDescription('Adapter directory on the server, under its import directory').setMaxLength(1000))
        .addAttachmentOption((o) => o.setName('file').setDescription('The adapter directory as a .zip or .tar.gz'))
        .addStringOption((o) => o.setName('description').setDescription('What this adapter is good at').setMaxLength(300))
        .addStringOption((o) => o.setName('category').setDescription('The skill it teaches, e.g. code').setAutocomplete(true).setMaxLength(64))
        .addBooleanOption((o) => o.setName('replace').setDescription('Replace an adapter already registered under this name')),
    )
    .addSubcommand((s) =>
      s
        .setName('list')
        .setDescription('List registered adapters')
        .addIntegerOption((o) => o.setName('page').setDescription('Page of the list').setMinValue(1)),
    )
    .addSubcommand((s) => s.setName('show').setDescription('Show an adapter: shapes, size, recipe, diagnostics').addStringOption(adapterName('Adapter to show')))
    .addSubcommand((s) =>
      s
        .setName('remove')
        .setDescription('Remove an adapter from the registry')
        .addStringOption(adapterName('Adapter to remove'))
        .addBooleanOption((o) => o.setName('force').setDescription('Remove it even if registered merges were built from it')),
    );
}

function mergeCommand() {
  const command = new SlashCommandBuilder().setName('merge').setDescription('Merge adapters into one').setContexts(InteractionContextType.Guild);
  for (const method of MERGE_METHODS) command.addSubcommand(mergeMethodSubcommand(method));
  command
    .addSubcommand((s) =>
      s
        .setName('status')
        .setDescription('Show a merge job, or the recent ones')
        .addStringOption((o) => o.setName('job').setDescription('Job id').setAutocomplete(true).setMaxLength(100)),
    )
    .addSubcommand((s) =>
      s
        .setName('cancel')
        .setDescription('Cancel a queued or running merge')
        .addStringOption((o) => o.setName('job').setDescription('Job id').setRequired(true).setAutocomplete(true).setMaxLength(100)),
    );
  return command;
}

/** A router's name (option `router`: its autocomplete offers routers, where `name` offers adapters). */
const routerName = (description: string) => (o: SlashCommandStringOption) =>
  o.setName('router').setDescription(description).setRequired(true).setAutocomplete(true).setMaxLength(64);

const modelOption = (name: string, description: string, required = false) => (o: SlashCommandStringOption) =>
  o.setName(name).setDescription(description).setRequired(required).setAutocomplete(true).setMaxLength(100);

function askCommand() {
  return new SlashCommandBuilder()
    .setName('ask')
    .setDescription('Ask the base model, an adapter, a merge or a router')
    .setContexts(InteractionContextType.Guild)
    .addStringOption((o) => o.setName('prompt').setDescription('Your question').setRequired(true).setMaxLength(4000))
    .addStringOption(modelOption('adapter', 'Adapter, merge or router to answer (default: the base model)'))
    .addIntegerOption((o) => o.setName('max_tokens').setDescription('Longest answer in tokens (default 256)').setMinValue(1).setMaxValue(4096))
    .addNumberOption((o) => o.setName('temperature').setDescription('0 = always the most likely word; higher = more varied (default 0.7)').setMinValue(0).setMaxValue(2));
}

function chatCommand() {
  return new SlashCommandBuilder()
    .setName('chat')
    .setDescription('Chat with a model in a thread')
    .setContexts(InteractionContextType.Guild)
    .addSubcommand((s) => s.setName('start').setDescription('Open a thread where every message is a turn').addStringOption(modelOption('adapter', 'Adapter or merge to chat with (default: the base model)')))
    .addSubcommand((s) => s.setName('use').setDescription('Switch this chat to another adapter (the history stays)').addStringOption(modelOption('adapter', 'Adapter or merge to switch to', true)))
    .addSubcommand((s) => s.setName('end').setDescription('End this chat and archive its thread'));
}

function compareCommand() {
  return new SlashCommandBuilder()
    .setName('compare')
    .setDescription('A blind A/B battle: two adapters answer, the team votes')
    .setContexts(InteractionContextType.Guild)
    .addStringOption((o) => o.setName('prompt').setDescription('The prompt both answer').setRequired(true).setMaxLength(2000))
    .addStringOption(modelOption('a', 'One contender (default: chosen at random)'))
    .addStringOption(modelOption('b', 'The other contender (default: chosen at random)'))
    .addStringOption((o) => o.setName('category').setDescription('The skill this prompt tests, e.g. code').setAutocomplete(true).setMaxLength(64));
}

function leaderboardCommand() {
  return new SlashCommandBuilder()
    .setName('leaderboard')
    .setDescription('Ratings from the team’s votes, with 95% intervals')
    .setContexts(InteractionContextType.Guild)
    .addStringOption((o) => o.setName('category').setDescription('Only battles of this skill').setAutocomplete(true).setMaxLength(64));
}

const listOption = (name: string, description: string) => (o: SlashCommandStringOption) =>
  o.setName(name).setDescription(description).setAutocomplete(true).setMaxLength(1000);

function evalCommand() {
  return new SlashCommandBuilder()
    .setName('eval')
    .setDescription('Measure how much of each skill adapters and merges keep (retention per category)')
    .setContexts(InteractionContextType.Guild)
    .addStringOption(listOption('models', 'Adapters and merges to score, comma separated (default: every registered one)'))
    .addStringOption(listOption('suites', 'Skill suites, comma separated (default: all of them)'))
    .addBooleanOption((o) => o.setName('checks').setDescription('Also generate answers and apply each item’s checks (slower)'));
}

function sweepCommand() {
  return new SlashCommandBuilder()
    .setName('sweep')
    .setDescription('Search merge settings for the recipe that keeps every skill best')
    .setContexts(InteractionContextType.Guild)
    .addStringOption(listOption('adapters', 'Adapters to merge, comma separated (default: the experts of the suites’ categories)'))
    .addStringOption((o) => o.setName('methods').setDescription('Methods to try, e.g. linear,ties,dare_ties (the default)').setMaxLength(200))
    .addStringOption((o) => o.setName('densities').setDescription('Densities to try, e.g. 0.3,0.6; or a range 0.1:0.9 for a random search').setMaxLength(200))
    .addStringOption((o) => o.setName('weights').setDescription('Weights to try: 0.25,0.5 (every adapter) or 0.4/0.2/0.2/0.2 (each); or lo:hi').setMaxLength(400))
    .addStringOption((o) =>
      o
        .setName('search')
        .setDescription('Try every combination (grid), samples of them (random), or tune the weights (CMA-ES)')
        .addChoices({ name: 'grid', value: 'grid' }, { name: 'random', value: 'random' }, { name: 'tune weights (CMA-ES)', value: 'cmaes' }),
    )
    .addIntegerOption((o) => o.setName('samples').setDescription('Random search: how many recipes to try (default 16)').setMinValue(1).setMaxValue(256))
    .addIntegerOption((o) => o.setName('budget').setDescription(`Tuning: how many merges to try (default ${DEFAULT_BUDGET})`).setMinValue(2).setMaxValue(256))
    .addBooleanOption((o) => o.setName('per_layer').setDescription('Tuning: a weight per adapter per layer group (early, middle, late)'))
    .addStringOption(listOption('suites', 'Skill suites to score on, comma separated (default: all of them)'));
}

function routerCommand() {
  return new SlashCommandBuilder()
    .setName('router')
    .setDescription('Routers: one model that sends each prompt to the adapter that knows it best')
    .setContexts(InteractionContextType.Guild)
    .addSubcommand((s) =>
      s
        .setName('create')
        .setDescription('Create a router over adapters or merges, calibrated on the skill suites of their categories')
        .addStringOption((o) => o.setName('name').setDescription('A slug, e.g. all-skills').setRequired(true).setMaxLength(64))
        .addStringOption((o) => listOption('members', 'Adapters or merges it routes to, comma separated')(o).setRequired(true))
        .addStringOption(modelOption('fallback', 'Answers when no member is clearly nearest, e.g. a merge (default: none)'))
        .addNumberOption((o) =>
          o
            .setName('blend')
            .setDescription('Instead of a fallback: when unsure, the two nearest answer together at this weight (e.g. 0.6)')
            .setMinValue(0.01)
            .setMaxValue(1.5),
        )
        .addNumberOption((o) =>
          o
            .setName('margin')
            .setDescription(`How much nearer the nearest member must be to answer alone (default ${DEFAULT_BLEND_MARGIN} with a blend, else ${DEFAULT_ROUTING_MARGIN})`)
            .setMinValue(0)
            .setMaxValue(2),
        ),
    )
    .addSubcommand((s) => s.setName('list').setDescription('List routers'))
    .addSubcommand((s) => s.setName('show').setDescription('Show a router: members, rule, what answers when it is unsure').addStringOption(routerName('Router to show')))
    .addSubcommand((s) => s.setName('remove').setDescription('Remove a router (its members stay registered)').addStringOption(routerName('Router to remove')));
}

/** The JSON bodies deployed to Discord (bulk overwrite). */
export function commandDefinitions(): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  return [adapterCommand(), mergeCommand(), askCommand(), chatCommand(), compareCommand(), leaderboardCommand(), evalCommand(), sweepCommand(), routerCommand()].map(
    (c) => c.toJSON(),
  );
}
