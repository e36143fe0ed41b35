// `loraforge generate`: one generation, streamed to the terminal. With a checkpoint (or built model) directory it
// runs the engine in this process, no server needed; otherwise --model names a model of a running server.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import type { GenerateResult, PromptInput } from '../../inference/engine/index.js';
import { progressPrinter } from './build-model.js';

interface GenerateOptions {
  model: string;
  adapter?: string;
  prompt: string;
  chat?: boolean;
  maxTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  logprobs?: number;
  stop?: string[];
  json?: boolean;
  server?: string;
  token?: string;
}

function number(name: string, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new InvalidInputError(`${name} must be ${integer ? 'an integer' : 'a number'}, not "${value}"`);
    return n;
  };
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export function generateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate text with the base model or an adapter, streamed to the terminal')
    .requiredOption('--model <dir|name>', 'an HF checkpoint or built model directory (runs here), or a model name of a server')
    .option('--adapter <dir|name>', 'a PEFT adapter directory (local model) or a registered adapter name (server)')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--chat', 'send the prompt as a user message through the chat template')
    .option('--max-tokens <n>', 'tokens to generate at most', number('--max-tokens', true), 128)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', number('--temperature', false), 1)
    .option('--top-p <p>', 'nucleus sampling mass', number('--top-p', false))
    .option('--top-k <k>', 'sample among the k most likely tokens', number('--top-k', true))
    .option('--seed <s>', 'random seed: same seed, same tokens', number('--seed', true))
    .option('--stop <text...>', 'stop strings')
    .option('--logprobs <k>', 'report each token\'s logprob and the k most likely alternatives', number('--logprobs', true))
    .option('--json', 'print one JSON object: prompt token ids, generated token ids and their logprobs')
    .option('--server <url>', 'use this loraforge API (default: LORAFORGE_API_URL) even if --model is a directory')
    .option('--token <token>', 'bearer token of the API (LORAFORGE_API_TOKEN)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  loraforge generate --model ./data/demo-model/base --adapter ./data/demo-model/adapters/code --prompt "def add(a, b):"\n' +
        '  loraforge generate --model linux-commands --prompt "List files by size" --chat --seed 7   # through a server\n',
    )
    .action(async (opts: GenerateOptions) => {
      const local = !opts.server && (await isDirectory(opts.model));
      if (local) await generateLocally(opts);
      else await generateRemotely(opts);
    });
}

async function generateLocally(opts: GenerateOptions): Promise<void> {
  const [{ loadConfig }, { createLogger }, { InferenceEngine }, { staticAdapters }, { prepareModel }, { targetsOfAdapters }] = await Promise.all([
    import('../../config/index.js'),
    import('../../util/log.js'),
    import('../../inference/engine/index.js'),
    import('../../inference/engine/static-adapters.js'),
    import('../../inference/prepare.js'),
    import('../../inference/builder/adapter-targets.js'),
  ]);
  const config = loadConfig();
  const log = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, format: config.log.format });
  if (opts.adapter && !(await isDirectory(opts.adapter))) {
    throw new InvalidInputError(`--adapter ${opts.adapter} is not a directory: with a local model, give the adapter's PEFT directory`);
  }
  const inf = config.inference;
  const printer = progressPrinter();
  // unless configured, build LoRA inputs for what the adapter adapts (the demo's adapters include the MLP)
  const targets = config.builder.targets ?? (opts.adapter ? await targetsOfAdapters([opts.adapter]) : undefined);
  const model = await prepareModel(path.resolve(opts.model), { dataDir: config.dataDir, ...config.builder, targets, onProgress: (p) => printer.update(p) });
  printer.done();
  const adapterName = opts.adapter ? path.basename(path.resolve(opts.adapter)) : null;
  const engine = await InferenceEngine.start({
    ...inf,
    modelDir: model.dir,
    adapters: staticAdapters(opts.adapter ? [{ dir: opts.adapter, name: adapterName! }] : []),
    log,
    maxQueue: 0,
  });
  try {
    const input: PromptInput = opts.chat ? { kind: 'chat', messages: [{ role: 'user', content: opts.prompt }] } : { kind: 'text', text: opts.prompt };
    const result = await engine.generate(
      {
        model: adapterName ?? engine.modelId,
        input,
        maxTokens: opts.maxTokens,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        seed: opts.seed,
        stop: opts.stop,
        logprobs: opts.logprobs ?? (opts.json ? 0 : null),
      },
      { onDelta: opts.json ? undefined : (d) => process.stdout.write(d.text) },
    );
    if (opts.json) printJson(result);
    else process.stdout.write('\n');
  } finally {
    await engine.close();
  }
}

function printJson(result: GenerateResult): void {
  const choice = result.choices[0]!;
  process.stdout.write(
    `${JSON.stringify({
      model: result.model,
      seed: result.seed,
      prompt_token_ids: result.promptIds,
      token_ids: choice.tokenIds,
      text: choice.text,
      finish_reason: choice.finishReason,
      logprobs: choice.logprobs?.map((t) => ({
        token_id: t.token,
        token: t.text,
        logprob: t.logprob,
        top: t.top.map((a) => ({ token_id: a.token, token: a.text, logprob: a.logprob })),
      })),
      usage: result.usage,
    })}\n`,
  );
}

async function generateRemotely(opts: GenerateOptions): Promise<void> {
  const [{ loadConfig }, { LoraforgeClient }] = await Promise.all([import('../../config/index.js'), import('../../client/index.js')]);
  const config = loadConfig();
  const client = new LoraforgeClient({ baseUrl: opts.server ?? config.bot.apiUrl, token: opts.token ?? config.server.authToken });
  const model = opts.adapter ?? opts.model;
  const sampling = {
    max_tokens: opts.maxTokens,
    temperature: opts.temperature,
    top_p: opts.topP,
    top_k: opts.topK,
    seed: opts.seed,
    stop: opts.stop,
  };
  const prompt = opts.chat ? undefined : opts.prompt;
  if (opts.json) {
    // return_token_ids (a vLLM extension) adds the prompt's and the answer's token ids to each choice
    const k = opts.logprobs ?? 0;
    let out: Record<string, unknown>;
    if (prompt) {
      const answer = await client.inference.completion({ model, prompt, ...sampling, logprobs: k, return_token_ids: true });
      const choice = answer.choices[0]!;
      const lp = choice.logprobs;
      out = {
        prompt_token_ids: choice.prompt_token_ids,
        token_ids: choice.token_ids,
        text: choice.text,
        finish_reason: choice.finish_reason,
        logprobs: lp?.tokens.map((token, i) => ({
          token_id: choice.token_ids?.[i],
          token,
          logprob: lp.token_logprobs[i],
          top: Object.entries(lp.top_logprobs[i] ?? {}).map(([t, l]) => ({ token: t, logprob: l })),
        })),
        usage: answer.usage,
      };
    } else {
      const answer = await client.inference.chat({
        model,
        messages: [{ role: 'user', content: opts.prompt }],
        ...sampling,
        logprobs: true,
        top_logprobs: k,
        return_token_ids: true,
      });
      const choice = answer.choices[0]!;
      out = {
        prompt_token_ids: choice.prompt_token_ids,
        token_ids: choice.token_ids,
        text: choice.message.content,
        finish_reason: choice.finish_reason,
        logprobs: choice.logprobs?.content.map((t, i) => ({
          token_id: choice.token_ids?.[i],
          token: t.token,
          logprob: t.logprob,
          top: t.top_logprobs.map((a) => ({ token: a.token, logprob: a.logprob })),
        })),
        usage: answer.usage,
      };
    }
    process.stdout.write(`${JSON.stringify({ model, ...out })}\n`);
    return;
  }
  const stream = prompt
    ? client.inference.completionStream({ model, prompt, ...sampling })
    : client.inference.chatStream({ model, messages: [{ role: 'user', content: opts.prompt }], ...sampling });
  for await (const chunk of stream) {
    const c = chunk.choices[0] as { text?: string; delta?: { content?: string } } | undefined;
    process.stdout.write(c?.text ?? c?.delta?.content ?? '');
  }
  process.stdout.write('\n');
}
