// Entry point of the `loraforge` command.
import { adaptersCommand } from './commands/adapters.js';
import { allCommand } from './commands/all.js';
import { botCommand } from './commands/bot.js';
import { buildModelCommand } from './commands/build-model.js';
import { evalCommand } from './commands/eval.js';
import { foldCommand } from './commands/fold.js';
import { generateCommand } from './commands/generate.js';
import { healthcheckCommand } from './commands/healthcheck.js';
import { inspectCommand } from './commands/inspect.js';
import { leaderboardCommand } from './commands/leaderboard.js';
import { makeDemoModelCommand } from './commands/make-demo-model.js';
import { mergeCommand } from './commands/merge.js';
import { mergesCommand } from './commands/merges.js';
import { registerCommandsCommand } from './commands/register-commands.js';
import { routersCommand } from './commands/routers.js';
import { serveCommand } from './commands/serve.js';
import { sweepCommand } from './commands/sweep.js';
import { tuneCommand } from './commands/tune.js';
import { workerCommand } from './commands/worker.js';
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [
  serveCommand,
  workerCommand,
  allCommand,
  adaptersCommand,
  mergesCommand,
  routersCommand,
  buildModelCommand,
  generateCommand,
  makeDemoModelCommand,
  mergeCommand,
  inspectCommand,
  foldCommand,
  evalCommand,
  sweepCommand,
  tuneCommand,
  botCommand,
  registerCommandsCommand,
  healthcheckCommand,
  leaderboardCommand,
];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
