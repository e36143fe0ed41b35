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

export const MERGE_METHODS = ['linear', 'cat', 'svd', 'ties', 'dare_ties', 'dare_linear', 'magnitude_prune'] as const;
export type MergeMethodName = (typeof MERGE_METHODS)[number];

const METHOD_HELP: Record<MergeMethodName, string> = {
  linear: 'Weighted sum of the adapters’ updates (exact)',
  cat: 'Concatenate the adapters (exact sum, rank adds up)',
  svd: 'Weighted sum truncated to a rank by SVD',
  ties: 'TIES: trim small values, elect signs, average agreeing ones',
  dare_ties: 'DARE (random drop and rescale) then TIES sign election',
  dare_linear: 'DARE (random drop and rescale) then a weighted sum',
  magnitude_prune: 'Keep the largest values of each update, then sum',
};

/** Which optional knobs each method has (weights and adapters are common to all). */
const METHOD_OPTIONS: Record<MergeMethodName, { density: boolean; rank: boolean; seed: boolean }> = {
  linear: { density: false, rank: false, seed: false },
  cat: { density: false, rank: false, seed: false },
  svd: { density: false, rank: true, seed: false },
  ties: { density: true, rank: true, seed: false },
  dare_ties: { density: true, rank: true, seed: true },
  dare_linear: { density: true, rank: true, seed: true },
  magnitude_prune: { density: true, rank: true, seed: false },
};

function mergeMethodSubcommand(method: MergeMethodName) {
  return (s: SlashCommandSubcommandBuilder) => {
    const knobs = METHOD_OPTIONS[method];
    s.setName(method)
      .setDescription(METHOD_HELP[method])
      .addStringOption((o) => o.setName('weights').setDescription('One weight per adapter, in order, e.g. 1,1,1,1').setRequired(true).setMaxLength(400));
    // the pruning methods have no sensible default density: Discord asks for it
    if (knobs.density) {
      s.addNumberOption((o) => o.setName('density').setDescription('Fraction of each update to keep, in (0, 1], e.g. 0.2').setRequired(true).setMinValue(0).setMaxValue(1));
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

const modelOption = (name: string, description: string, required = false) => (o: SlashCommandStringOption) =>
  o.setName(name).setDescription(description).setRequired(required).setAutocomplete(true).setMaxLength(100);

function askCommand() {
  return new SlashCommandBuilder()
    .setName('ask')
    .setDescription('Ask the base model, an adapter or a merge')
    .setContexts(InteractionContextType.Guild)
    .addStringOption((o) => o.setName('prompt').setDescription('Your question').setRequired(true).setMaxLength(4000))
    .addStringOption(modelOption('adapter', 'Adapter or merge to answer (default: the base model)'))
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

/** The JSON bodies deployed to Discord (bulk overwrite). */
export function commandDefinitions(): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  return [adapterCommand(), mergeCommand(), askCommand(), chatCommand(), compareCommand(), leaderboardCommand()].map((c) => c.toJSON());
}
