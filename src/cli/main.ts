// Entry point of the `loraforge` command.
import { buildModelCommand } from './commands/build-model.js';
import { foldCommand } from './commands/fold.js';
import { generateCommand } from './commands/generate.js';
import { inspectCommand } from './commands/inspect.js';
import { makeDemoModelCommand } from './commands/make-demo-model.js';
import { mergeCommand } from './commands/merge.js';
import { serveCommand } from './commands/serve.js';
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [
  serveCommand,
  buildModelCommand,
  generateCommand,
  makeDemoModelCommand,
  mergeCommand,
  inspectCommand,
  foldCommand,
];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
